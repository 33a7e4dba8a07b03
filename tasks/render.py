"""Pure builders: settings in, exact file text out.

Nothing here touches a server; the unit tests compare the output directly.
"""

from __future__ import annotations

import json

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tasks import checks, layout
from tasks.backup_settings import DEFAULT_BACKUP_MAX_AGE_HOURS
from tasks.secrets import Resolved
from tasks.settings import ROOT, Settings

TEMPLATES = ROOT / "templates"
SERVER_PROGRAMS = TEMPLATES / "server"
MANAGED_NOTICE = "Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy."
MASK = "********"
# How long Caddy keeps trying a refused upstream, and how often (see the Caddyfile).
TRY_DURATION, TRY_INTERVAL = "10s", "100ms"
# What Caddy answers while a restore runs (srq-hpn-maintenance on).
MAINTENANCE_MESSAGE = "Down for maintenance: the database is being restored. Back shortly."
MAINTENANCE_RETRY_AFTER = 30

_jinja = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def render_template(name: str, **context) -> str:
    return _jinja.get_template(name).render(managed_notice=MANAGED_NOTICE, **context)


def compose_file_value(repo_files: list[str], paths: layout.Paths) -> str:
    """COMPOSE_FILE: the repository's compose files, then the deploy's layer."""
    return ":".join([*repo_files, paths.override])


def env_file(resolved: Resolved, compose_file: str, masked: bool = False) -> str:
    """The text of .env.production: the guide's Quick Reference, then every other
    variable the app asks for. ``masked`` replaces every secret by a mask."""
    values = {
        name: (MASK if masked and name in resolved.secret else value) for name, value in resolved.values.items()
    }
    fixed = set(values) & {"DOMAIN", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_APP_USER",
                           "POSTGRES_APP_PASSWORD", "NEXT_PUBLIC_API_BASE_URL"}
    extra = [(name, value) for name, value in values.items() if name not in fixed]
    return render_template("env.production.j2", compose_file=compose_file, values=values, extra=extra)


def parse_env_file(text: str) -> dict[str, str]:
    """Read KEY=value lines of an env file as written by env_file() (quotes removed)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def caddyfile(settings: Settings) -> str:
    if settings.behind_edge:
        return render_template("caddy/Caddyfile.j2", global_options=[], tls_internal=False, behind_edge=True,
                               edge_port=layout.EDGE_PORT, **_caddy_routes())
    return render_template(
        "caddy/Caddyfile.j2",
        global_options=_acme_options(settings),
        tls_internal=settings.caddy_tls == "internal",
        behind_edge=False,
        **_caddy_routes(),
    )


def _caddy_routes() -> dict:
    return dict(
        api=f"{layout.API}:{layout.UPSTREAMS[layout.API]}",
        web=f"{layout.WEB}:{layout.UPSTREAMS[layout.WEB]}",
        try_duration=TRY_DURATION,
        try_interval=TRY_INTERVAL,
        maintenance_root=layout.MAINTENANCE_FLAG.rsplit("/", 1)[0] or "/",
        maintenance_file="/" + layout.MAINTENANCE_FLAG.rsplit("/", 1)[1],
        maintenance_retry_after=MAINTENANCE_RETRY_AFTER,
        maintenance_message=MAINTENANCE_MESSAGE,
    )


def edge_caddyfile(settings: Settings, upstreams: list[str]) -> str:
    """The edge's Caddyfile: HTTPS for the domain, /api/* and the rest load-balanced across the
    app servers (``upstreams``: their private addresses) with active health checks on the
    guide's health endpoint (/api/health) and the web's page."""
    dials = [f"[{address}]:{layout.EDGE_PORT}" if ":" in address else f"{address}:{layout.EDGE_PORT}"
             for address in upstreams]
    return render_template(
        "edge/Caddyfile.j2", domain=settings.domain, global_options=_acme_options(settings),
        tls_internal=settings.caddy_tls == "internal", upstreams=dials,
        routes=[("api", layout.EDGE_HEALTH_URIS["api"]), ("web", layout.EDGE_HEALTH_URIS["web"])],
        interval=layout.EDGE_HEALTH_INTERVAL, timeout=layout.EDGE_HEALTH_TIMEOUT, try_duration=TRY_DURATION,
        try_interval=layout.EDGE_TRY_INTERVAL, fail_duration=layout.EDGE_FAIL_DURATION)


def edge_compose(settings: Settings) -> str:
    """The edge's compose file: Caddy alone, its Caddyfile (and a private ACME server's root) mounted."""
    import yaml

    volumes = [{"type": "bind", "source": settings.paths.edge_caddyfile, "target": f"{layout.CADDY_CONFIG_DIR}/Caddyfile",
                "read_only": True}]
    if settings.caddy_acme_ca_root:
        volumes.append({"type": "bind", "source": settings.paths.acme_ca_root, "target": layout.CADDY_ACME_CA_ROOT,
                        "read_only": True})
    volumes += ["edge_data:/data", "edge_config:/config"]
    document = {"name": layout.EDGE_PROJECT, "services": {layout.CADDY: {
        "image": layout.EDGE_IMAGE, "container_name": layout.EDGE_CONTAINER, "restart": "unless-stopped",
        "ports": ["80:80", "443:443", "443:443/udp"], "volumes": volumes}},
        "volumes": {"edge_data": {}, "edge_config": {}}}
    return f"# {MANAGED_NOTICE}\n" + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def _acme_options(settings: Settings) -> list[str]:
    options = []
    if settings.caddy_acme_email:
        options.append(f"email {settings.caddy_acme_email}")
    if settings.caddy_acme_ca:
        options.append(f"acme_ca {settings.caddy_acme_ca}")
    if settings.caddy_acme_ca_root:
        options.append(f"acme_ca_root {layout.CADDY_ACME_CA_ROOT}")
    return options


def daemon_json(settings: Settings) -> str:
    """/etc/docker/daemon.json: the settings dict serialised."""
    config: dict = {
        "log-driver": layout.DEFAULT_LOG_DRIVER,
        "log-opts": {
            "max-size": settings.docker_log_max_size,
            "max-file": str(settings.docker_log_max_file),
        },
        "live-restore": settings.docker_live_restore,
    }
    if settings.docker_registry_mirrors:
        config["registry-mirrors"] = list(settings.docker_registry_mirrors)
    if settings.docker_insecure_registries:
        config["insecure-registries"] = list(settings.docker_insecure_registries)
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def deploy_env(settings: Settings, backup_max_age_hours: int = DEFAULT_BACKUP_MAX_AGE_HOURS,
               backups_on: str = "") -> str:
    """/etc/srq-hpn/deploy.env: what the server programs need to know (no secret);
    ``backup_max_age_hours``: when the newest backup is stale, for the backup schedule;
    ``backups_on``: the app server that takes a group's scheduled backups, when not this one."""
    values = {
        "APP_DIR": settings.paths.app_dir,
        "STATE_DIR": settings.paths.state_dir,
        "ENV_FILE": layout.ENV_FILE,
        "DOMAIN": settings.domain,
        "DB_SERVICE": layout.DB,
        "CADDY_SERVICE": layout.CADDY,
        "MIGRATE_SERVICE": layout.MIGRATE_SERVICE,
        "UPSTREAMS": " ".join(f"{service}:{port}" for service, port in layout.UPSTREAMS.items()),
        "READY_TIMEOUT": settings.ready_timeout,
        "DRAIN_TIMEOUT": settings.drain_timeout,
        "DB_READY_TIMEOUT": settings.postgres_healthy_timeout,
        "DB_NAME": settings.postgres_db,
        "DB_USER": settings.postgres_user,
        "DB_APP_USER": settings.postgres_app_user,
        "DB_HOST": settings.postgres_host,
        "DB_PORT": settings.postgres_port,
        "DB_SSLMODE": settings.postgres_sslmode,
        "DB_CA_FILE": layout.DB_CA_FILE,
        "DB_CA_MOUNT": layout.DB_CA_MOUNT,
        "DB_CLIENT_LABEL": layout.DB_CLIENT_LABEL,
        "ROLE": settings.role,
        "PRIVATE_ADDRESS": settings.private_address,
        "BACKUPS_ON": backups_on,
        "BACKUP_DIR": settings.backups_dir,
        "WAL_ARCHIVE": int(settings.backup_wal_archive),
        "WAL_DIR": settings.wal_dir,
        "WAL_MOUNT": layout.WAL_MOUNT,
        "WAL_TIMEOUT": settings.backup_wal_timeout,
        "KEEP_DAILY": settings.backup_keep_daily,
        "KEEP_WEEKLY": settings.backup_keep_weekly,
        "KEEP_MONTHLY": settings.backup_keep_monthly,
        "DRILL_LABEL": layout.DRILL_LABEL,
        "REHEARSAL_LABEL": layout.REHEARSAL_LABEL,
        "MAINTENANCE_FLAG": layout.MAINTENANCE_FLAG,
        "EARLY_PULL_PID": layout.EARLY_PULL_PID,
        "OFFSITE_REPOSITORY": settings.backup_offsite_repository,
        "OFFSITE_CHECK_SUBSET": settings.backup_offsite_check_subset,
        "OFFSITE_PASSWORD_FILE": layout.OFFSITE_PASSWORD_FILE,
        "OFFSITE_SSH_CONFIG": layout.OFFSITE_SSH_CONFIG,
        "OFFSITE_SSH_HOST": layout.OFFSITE_SSH_HOST,
    }
    server_checks = checks.server_values(settings, backup_max_age_hours)
    twice = sorted(set(values) & set(server_checks))
    if twice:  # the shell reads the last: one of the two would be silently ignored
        raise ValueError(f"deploy.env would set {', '.join(twice)} twice")
    values.update(server_checks)
    return f"# {MANAGED_NOTICE}\n" + "".join(f"{key}={_shell_word(value)}\n" for key, value in values.items())


def backup_units(settings: Settings) -> dict[str, str]:
    """The backup's systemd service and timer, by file name."""
    context = {"lib_dir": layout.LIB_DIR, "schedule": settings.backup_schedule,
               "offsite": bool(settings.backup_offsite_repository)}
    return {
        layout.BACKUP_SERVICE: render_template("systemd/srq-hpn-backup.service.j2", **context),
        layout.BACKUP_TIMER: render_template("systemd/srq-hpn-backup.timer.j2", **context),
    }


def wal_ship_units() -> dict[str, str]:
    """The systemd service and timer that copy the WAL archive off the server, by file name."""
    context = {"lib_dir": layout.LIB_DIR, "interval": layout.WAL_SHIP_INTERVAL, "service": layout.WAL_SHIP_SERVICE}
    return {
        layout.WAL_SHIP_SERVICE: render_template("systemd/srq-hpn-wal-ship.service.j2", **context),
        layout.WAL_SHIP_TIMER: render_template("systemd/srq-hpn-wal-ship.timer.j2", **context),
    }


def offsite_ssh_config(settings: Settings) -> str:
    """The SSH client configuration that reaches the off-server copy's host."""
    target = settings.offsite
    return render_template(
        "backup/ssh_config.j2",
        alias=layout.OFFSITE_SSH_HOST,
        host=target.host,
        user=target.user,
        port=target.port,
        key=layout.OFFSITE_SSH_KEY,
        known_hosts=layout.OFFSITE_KNOWN_HOSTS,
        strict="accept-new" if settings.backup_offsite_accept_new_host_key and not settings.backup_offsite_host_key
        else "yes",
    )


def stack_env(project: str, containers: dict[str, str], caddyfile_in_container: str, db_image: str = "") -> str:
    """$STATE_DIR/stack.env: what the deploy learnt from the app's compose configuration
    (``db_image``: the db service's image, the client of an external database)."""
    values = {"PROJECT": project, "CADDYFILE": caddyfile_in_container, "DB_IMAGE": db_image}
    values.update({f"{service.upper()}_CONTAINER": name for service, name in sorted(containers.items())
                   if service in layout.SERVICES})
    return f"# {MANAGED_NOTICE}\n" + "".join(f"{key}={_shell_word(value)}\n" for key, value in values.items())


def _shell_word(value) -> str:
    text = str(value)
    return text if text and all(c.isalnum() or c in "._/:-@" for c in text) else "'" + text.replace("'", "'\\''") + "'"


def monitor_units(settings: Settings) -> dict[str, str]:
    """The monitor's systemd units by file name (installed in /etc/systemd/system)."""
    context = {"interval": settings.monitor_interval, "program": f"{layout.LIB_DIR}/srq-hpn-monitor",
               "timer": layout.MONITOR_TIMER, "service": layout.MONITOR_SERVICE}
    return {
        layout.MONITOR_SERVICE: render_template("systemd/srq-hpn-monitor.service.j2", **context),
        layout.MONITOR_TIMER: render_template("systemd/srq-hpn-monitor.timer.j2", **context),
    }


def journal_upload_conf(settings: Settings) -> str:
    """systemd-journal-upload's drop-in: the collector's URL (log_shipping_url)."""
    return render_template("journal/journal-upload.conf.j2", url=settings.log_shipping_url)


def secrets_record(current: dict[str, str], changed: list[str], now: str) -> str:
    """$STATE_DIR/secrets.json: when each password was last set (names and times, never
    values); the ``changed`` ones at ``now``, the others as recorded before."""
    record = {**current, **{name: now for name in changed}}
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def server_programs() -> dict[str, str]:
    """The deploy's server programs by file name (installed in LIB_DIR)."""
    return {path.name: path.read_text() for path in sorted(SERVER_PROGRAMS.iterdir()) if path.is_file()}
