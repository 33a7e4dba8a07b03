"""Step 1: validate the whole configuration before anything on the server changes."""

from __future__ import annotations

import os

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError

from tasks.settings import Settings, SettingsError, validated_settings


class PreflightError(PyinfraError):
    """The configuration is invalid; the message lists every problem."""


def check() -> Settings:
    """Return this host's validated settings, or stop the deploy listing every problem.

    Runs while pyinfra collects operations, so a bad configuration stops the run
    before a single command is executed on any server.
    """
    try:
        return validated_settings(host.data.dict(), dict(os.environ))
    except SettingsError as error:
        raise PreflightError(f"preflight failed for {host.name}: {error}") from None
