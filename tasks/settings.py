"""Settings of the deploy: defaults, the Settings of a host, and derived values.

Pure code: nothing here talks to a server. The defaults live in
``group_data/all.py``; this module only reads them. The rules a host's settings
must follow are in tasks.validation.
"""

from __future__ import annotations

import base64
import runpy
import secrets
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import quote

from tasks.backup_settings import Offsite, offsite_target
from tasks.layout import WAL_SUBDIR, Paths

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = ROOT / "group_data" / "all.py"

# Host data keys under these prefixes belong to this deploy: unknown ones are typos.
SETTING_PREFIXES = ("srq_hpn_", "postgres_", "caddy_", "docker_", "app_", "backup_", "drill_", "restore_",
                    "rollback_", "monitor_", "checklist_", "log_shipping_")
# Settings are read as attributes without this prefix (srq_hpn_domain -> domain).
OWN_PREFIX = "srq_hpn_"

# Secrets come from the operator's environment, never from settings.
PASSWORD_ENV_VARS = ("POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD")
WEBHOOK_ENV_VAR = "SRQ_HPN_MONITOR_WEBHOOK_URL"
MONITOR_INTERVAL_RANGE = (10, 3600)
# The off-server copy's repository password (restic), from the same place.
OFFSITE_PASSWORD_ENV = "RESTIC_PASSWORD"
# The deploy's own secrets: each fills its own variable only, never one the app asks for.
DEPLOY_SECRETS = {
    "POSTGRES_PASSWORD": "the database superuser's password",
    "POSTGRES_APP_PASSWORD": "the app role's password",
    OFFSITE_PASSWORD_ENV: "the off-server copy's password",
    WEBHOOK_ENV_VAR: "the monitor's webhook URL",
}


def load_defaults(path: Path = DEFAULTS_FILE) -> dict:
    """Return the settings of group_data/all.py with their default values."""
    namespace = runpy.run_path(str(path))
    return {key: value for key, value in namespace.items() if not key.startswith("_")}


def attribute(key: str) -> str:
    """The Settings attribute of a setting: its name without the deploy's own prefix."""
    return key[len(OWN_PREFIX):] if key.startswith(OWN_PREFIX) else key


@dataclass(frozen=True)
class Settings:
    """The validated settings of one host; one attribute per setting of
    group_data/all.py, named without the ``srq_hpn_`` prefix."""

    domain: str
    role: str
    private_address: str
    app_dir: str
    state_dir: str
    verify: bool
    verify_timeout: int
    app_source: str
    app_local_path: str
    app_git_repo: str
    app_git_branch: str
    app_git_deploy_key: str
    app_git_host_key: str
    app_git_accept_new_host_key: bool
    app_env: dict
    app_secrets: list
    app_next_public_api_base_url: str
    caddyfile: str
    ready_timeout: int
    drain_timeout: int
    releases_kept: int
    lock_timeout: int
    break_lock: bool
    migration_rehearsal: bool
    postgres_db: str
    postgres_user: str
    postgres_app_user: str
    postgres_publish_localhost: bool
    postgres_healthy_timeout: int
    postgres_host: str
    postgres_port: int
    postgres_sslmode: str
    postgres_ssl_ca: str
    caddy_tls: str
    caddy_acme_email: str
    caddy_acme_ca: str
    caddy_acme_ca_root: str
    docker_install_method: str
    docker_official_repo_url: str
    docker_log_max_size: str
    docker_log_max_file: int
    docker_live_restore: bool
    docker_registry_mirrors: list
    docker_insecure_registries: list
    monitor_enabled: bool
    monitor_interval: int
    checklist_image_max_age_days: int
    checklist_password_max_age_days: int
    log_shipping_url: str
    backup_dir: str
    backup_schedule: str
    backup_keep_daily: int
    backup_keep_weekly: int
    backup_keep_monthly: int
    backup_offsite_repository: str
    backup_offsite_ssh_key: str
    backup_offsite_host_key: str
    backup_offsite_accept_new_host_key: bool
    backup_offsite_check_subset: str
    backup_wal_archive: bool
    backup_wal_timeout: int
    drill_backup: str
    drill_from: str
    drill_time: str
    restore_backup: str
    restore_confirm: str
    restore_time: str
    restore_from: str
    rollback_to: str
    rollback_restore_backup: bool

    @classmethod
    def from_data(cls, data: dict) -> Settings:
        """Settings from every key of group_data/all.py (merged with a host's data)."""
        known = {f.name for f in fields(cls)}
        values = {attribute(key): value for key, value in data.items() if attribute(key) in known}
        missing = known - set(values)
        if missing:
            raise KeyError(f"settings missing from the data: {sorted(missing)}")
        return cls(**values)

    @property
    def paths(self) -> Paths:
        return Paths(app_dir=self.app_dir.rstrip("/"), state_dir=self.state_dir.rstrip("/"))

    @property
    def backups_dir(self) -> str:
        return self.backup_dir.rstrip("/")

    @property
    def wal_dir(self) -> str:
        """The WAL archive and base backups (point-in-time recovery)."""
        return f"{self.backups_dir}/{WAL_SUBDIR}"

    @property
    def offsite(self) -> "Offsite | None":
        """The off-server copy's target, or None when it is off."""
        return offsite_target(self.backup_offsite_repository) if self.backup_offsite_repository else None

    def local_source_path(self) -> Path:
        return local_path(self.app_local_path)

    def acme_ca_root_pem(self) -> str:
        """The private ACME server's root certificate(s), from ``caddy_acme_ca_root`` ("" when unset)."""
        return local_path(self.caddy_acme_ca_root).read_text() if self.caddy_acme_ca_root else ""

    @property
    def external_db(self) -> bool:
        """Whether the stack uses an external PostgreSQL (postgres_host) instead of its db service."""
        return bool(self.postgres_host)

    @property
    def behind_edge(self) -> bool:
        """An app server of a group: its Caddy serves plain HTTP on the private address, the edge HTTPS."""
        return self.role == "app"

    @property
    def edge(self) -> bool:
        """The group's load balancer: Caddy alone."""
        return self.role == "edge"

    def db_ca_pem(self) -> str:
        """The external database's CA certificate(s), from ``postgres_ssl_ca`` ("" when unset)."""
        return local_path(self.postgres_ssl_ca).read_text() if self.postgres_ssl_ca else ""

    @property
    def acme(self) -> bool:
        """Whether Caddy gets its certificate from an ACME server (not its own CA)."""
        return self.caddy_tls != "internal"


def local_path(value: str) -> Path:
    """A path on the operator's machine: ~ expanded, relative to this repository."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else ROOT / path


def with_defaults(data: dict, defaults: dict) -> dict:
    """Every setting: the host's value where it has one, else the default."""
    return {**defaults, **{k: v for k, v in data.items() if k in defaults}}


# --- Secrets and derived values ------------------------------------------------


def generate_password() -> str:
    """32 random bytes, base64-encoded: the strength of `openssl rand -base64 32`."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def database_url(user: str, password: str, db: str, host: str = "db", port: int = 5432) -> str:
    """A postgresql:// URL with the password percent-encoded (base64 has / + =)."""
    return f"postgresql://{user}:{quote(password, safe='')}@{host}:{port}/{db}"
