"""How a run that stops says so last: the refusal of bad input before pyinfra connects to
a host, and a failure the deploy has explained.

pyinfra prints a CliError as its own error ("--> pyinfra error: ..."), without the
file and line it adds to a PyinfraError. This module imports pyinfra's CLI, so only
code that runs under the CLI imports it (importing the CLI patches gevent in).
"""

import click
from pyinfra import logger
from pyinfra_cli.exceptions import CliError


class RefusedBeforeConnecting(CliError):
    """Bad input found before any connection; the message lists every problem."""


class StoppedExplained(CliError):
    """Every host failed with an explanation (tasks.remote.fail): the run ends with each
    one's last words, not pyinfra's "No hosts remaining!"."""

    def __init__(self, words: dict[str, str]):
        self.words = words
        super().__init__("; ".join(f"{name}: {text}" for name, text in words.items()))

    def show(self, file=None):  # noqa: ARG002 - click's signature
        for name, text in self.words.items():
            logger.warning(f"--> {click.style(f'Stopped on {name}', 'red', bold=True)}: {text}")
