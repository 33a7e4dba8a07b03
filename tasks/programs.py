"""The deploy's programs on the server (waits, swaps, the source and app-role helpers),
and what they need to know, in /etc/srq-hpn/deploy.env (no secret)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from tasks import facts, layout, render
from tasks.backup_settings import backup_max_age_hours
from tasks.operations.files import files_current
from tasks.settings import Settings


@deploy("Install the deploy's server programs")
def install(settings: Settings, backups_on: str = ""):
    """``backups_on``: an app server of a group whose scheduled backups another one takes (its checklist says so)."""
    programs = {
        f"{layout.LIB_DIR}/{name}": (text, "755" if name.startswith("srq-hpn-") else "644")
        for name, text in render.server_programs().items()
    }
    files_current(
        name=f"Ensure the server programs in {layout.LIB_DIR} and {layout.DEPLOY_ENV} are current",
        files={**programs, layout.DEPLOY_ENV: (render.deploy_env(settings, backup_age_limit(settings), backups_on), "644")},
        directories={layout.LIB_DIR: "755", layout.CONFIG_DIR: "755", settings.paths.state_dir: "700"},
    )


def backup_age_limit(settings: Settings) -> int:
    """When the newest backup is stale for the backup schedule, as systemd reads it on this server."""
    calendar = host.get_fact(facts.CalendarCheck, spec=settings.backup_schedule)
    return backup_max_age_hours(calendar.get("elapses") or [])
