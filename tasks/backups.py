"""Step 8: backups. The database is dumped and verified on a schedule (a systemd
timer running srq-hpn-backup), pruned, and copied off the server when that is set;
the deploy also backs it up before every migration
(``tasks.operations.backups.before_migrating``, called by the migration step)."""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import files, systemd

from tasks import facts, layout, render
from tasks.hostkeys import known_hosts_line
from tasks.operations.backups import offsite_password, offsite_repository
from tasks.operations.files import private_file
from tasks.settings import OFFSITE_PASSWORD_ENV, Settings


@deploy("Back up the database on a schedule")
def schedule(settings: Settings, backups_on: str = ""):
    """``backups_on``: an app server of a group whose scheduled backups another one takes."""
    files.directory(
        name=f"Ensure {settings.backups_dir} exists (root only)",
        path=settings.backups_dir,
        mode="700",
        user="root",
        group="root",
    )
    if backups_on:
        systemd.service(
            name=f"Ensure no backup timer runs here: the group's shared database is backed up on {backups_on}",
            service=layout.BACKUP_TIMER,
            running=False,
            enabled=False,
        )
        return
    if settings.backup_wal_archive:
        files.directory(
            name=f"Ensure the WAL archive {settings.wal_dir} exists (0700; its owner is the database's user)",
            path=settings.wal_dir,
            mode="700",
        )
    if settings.offsite:
        offsite(settings)
    wal_shipping(settings)
    changed = {
        unit: files.put(
            name=f"Ensure {layout.SYSTEMD_DIR}/{unit} is current",
            src=StringIO(text),
            dest=f"{layout.SYSTEMD_DIR}/{unit}",
            mode="644",
        ).will_change
        for unit, text in render.backup_units(settings).items()
    }
    systemd.service(
        name=f"Ensure the backup timer runs ({settings.backup_schedule}) and is enabled at boot",
        service=layout.BACKUP_TIMER,
        running=True,
        enabled=True,
        daemon_reload=any(changed.values()),
        restarted=bool(changed[layout.BACKUP_TIMER]),
    )


def offsite(settings: Settings):
    """The off-server copy: SSH key and configuration, password, repository."""
    target = settings.offsite
    files.directory(name=f"Ensure {layout.OFFSITE_CONFIG_DIR} exists (root only)", path=layout.OFFSITE_CONFIG_DIR,
                    mode="700")
    files.directory(name="Ensure /root/.ssh exists", path="/root/.ssh", mode="700")
    private_file(
        name=f"Ensure the off-server copy's SSH key is installed at {layout.OFFSITE_SSH_KEY} (0600)",
        path=layout.OFFSITE_SSH_KEY,
        content=HiddenValue(Path(settings.backup_offsite_ssh_key).expanduser().read_text()),
        preview="(private key)",
    )
    files.put(
        name=f"Ensure {layout.OFFSITE_SSH_CONFIG} reaches {target.user}@{target.host}:{target.port}",
        src=StringIO(render.offsite_ssh_config(settings)),
        dest=layout.OFFSITE_SSH_CONFIG,
        mode="600",
    )
    if not settings.backup_offsite_host_key:
        host.log_styled(f"The backup host's key ({target.host}) is trusted at the first connection "
                        "(backup_offsite_accept_new_host_key); set backup_offsite_host_key to pin it",
                        fg="yellow", log_func=logger.warning)
    else:
        files.put(
            name=f"Ensure {layout.OFFSITE_KNOWN_HOSTS} holds the backup host's key",
            src=StringIO(known_hosts_line(settings.backup_offsite_host_key, target.host, target.port)),
            dest=layout.OFFSITE_KNOWN_HOSTS,
            mode="600",
        )
    given = os.environ.get(OFFSITE_PASSWORD_ENV)
    password = offsite_password(
        name="Ensure the server holds RESTIC_PASSWORD (0600), checked against the repository",
        password=HiddenValue(given) if given else None,
    )
    offsite_repository(
        name=f"Ensure the off-server repository {settings.backup_offsite_repository} exists and opens",
        paths=settings.paths,
        repository=settings.backup_offsite_repository,
        password_changed=password.will_change,
    )


def wal_shipping(settings: Settings):
    """The WAL archive copied off the server every few seconds, with the off-server copy on."""
    wanted = bool(settings.offsite and settings.backup_wal_archive)
    units = render.wal_ship_units()
    if not wanted:
        if host.get_fact(facts.FileStates, paths=(f"{layout.SYSTEMD_DIR}/{layout.WAL_SHIP_TIMER}",)).get(
                f"{layout.SYSTEMD_DIR}/{layout.WAL_SHIP_TIMER}"):
            systemd.service(name="Ensure the WAL archive is no longer copied off the server",
                            service=layout.WAL_SHIP_TIMER, running=False, enabled=False)
        return
    changed = [
        files.put(
            name=f"Ensure {layout.SYSTEMD_DIR}/{unit} is current",
            src=StringIO(text),
            dest=f"{layout.SYSTEMD_DIR}/{unit}",
            mode="644",
        ).will_change
        for unit, text in units.items()
    ]
    systemd.service(
        name=f"Ensure the WAL archive is copied off the server every {layout.WAL_SHIP_INTERVAL} s",
        service=layout.WAL_SHIP_TIMER,
        running=True,
        enabled=True,
        daemon_reload=any(changed),
        restarted=changed[-1],
    )
