"""Step 15: the monitor. A systemd timer runs the checklist's monitored checks (container
health, Caddy, the certificate, disk space, backups, log shipping) every minute, and POSTs a JSON
alert to a webhook when a problem starts and when it clears.

The webhook's URL may hold a token: it is a secret, read from the operator's
environment (SRQ_HPN_MONITOR_WEBHOOK_URL), else kept from the server, and lives
there in a root-only file. Without a URL, or with ``monitor_enabled = False``, there
is no monitor (one installed before is removed)."""

from __future__ import annotations

import os
from io import StringIO

from pyinfra import host
from pyinfra.api import HiddenValue, deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from tasks import layout, render
from tasks.operations.files import private_file
from tasks.remote import RemoteError, read_private_file
from tasks.settings import WEBHOOK_ENV_VAR, Settings


def webhook_url() -> str:
    """The operator's URL, else the one already on the server, else ""."""
    if os.environ.get(WEBHOOK_ENV_VAR):
        return os.environ[WEBHOOK_ENV_VAR]
    try:
        return read_private_file(layout.MONITOR_WEBHOOK_FILE).strip()
    except RemoteError as error:
        raise PyinfraError(f"could not read the server's webhook file: {error}") from None


@deploy("Watch the stack and alert a webhook")
def install(settings: Settings):
    url = webhook_url() if settings.monitor_enabled else ""
    units = render.monitor_units(settings)
    if not url:
        host.log("No monitor: " + ("monitor_enabled is False" if not settings.monitor_enabled else
                                   f"no webhook URL (export {WEBHOOK_ENV_VAR}=... to have one)"))
        remove(settings, units)
        return
    private_file(
        name=f"Ensure {layout.MONITOR_WEBHOOK_FILE} holds the webhook's URL (0600, root; never shown)",
        path=layout.MONITOR_WEBHOOK_FILE,
        content=HiddenValue(url + "\n"),
        preview=f"({WEBHOOK_ENV_VAR}, not shown)",
    )
    written = [
        files.put(name=f"Ensure {layout.SYSTEMD_DIR}/{unit} is current", src=StringIO(text),
                  dest=f"{layout.SYSTEMD_DIR}/{unit}", mode="644")
        for unit, text in units.items()
    ]
    systemd.daemon_reload(name="Reload systemd's units (the monitor's changed)", _if=any_changed(*written))
    systemd.service(
        name=f"Ensure {layout.MONITOR_TIMER} is enabled and running (every {settings.monitor_interval}s)",
        service=layout.MONITOR_TIMER,
        running=True,
        enabled=True,
        # A running timer takes a new schedule when restarted (a new one is just started).
        restarted=any(unit.will_change for unit in written),
    )


def remove(settings: Settings, units: dict[str, str]):
    systemd.service(
        name=f"Ensure {layout.MONITOR_TIMER} is stopped and disabled",
        service=layout.MONITOR_TIMER,
        running=False,
        enabled=False,
    )
    removed = [
        files.file(name=f"Ensure {layout.SYSTEMD_DIR}/{unit} is absent", path=f"{layout.SYSTEMD_DIR}/{unit}",
                   present=False)
        for unit in units
    ]
    systemd.daemon_reload(name="Reload systemd's units (the monitor's removed)", _if=any_changed(*removed))
    files.file(name=f"Ensure {layout.MONITOR_WEBHOOK_FILE} is absent", path=layout.MONITOR_WEBHOOK_FILE,
               present=False)
    files.directory(name=f"Ensure {settings.paths.monitor_dir} is absent", path=settings.paths.monitor_dir,
                    present=False)
