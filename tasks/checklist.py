"""The guide's Production Checklist, checked on the server: one line per item with
its status and evidence (see tasks/checks.py for the items, and the server's
checks-*.sh for how each is checked). Reads only; fails when an item fails."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks import render
from tasks.digest import sha256
from tasks.operations.checklist import checklist_passed
from tasks.programs import backup_age_limit
from tasks.settings import Settings


@deploy("Check the server against the guide's Production Checklist")
def check(settings: Settings):
    checklist_passed(
        name=f"Ensure {settings.domain} passes the guide's Production Checklist",
        domain=settings.domain,
        deploy_env_sha256=sha256(render.deploy_env(settings, backup_age_limit(settings))),
    )
