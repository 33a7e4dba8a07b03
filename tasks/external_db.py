"""Beyond one server's database: an external (managed) PostgreSQL instead of the app's
db service.

Pure code, unit-tested: the rules of its settings, and what the app's compose
configuration must build for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from tasks import layout
from tasks.appspec import ContractError
from tasks.group import is_address

SSL_MODES = ("verify-full", "verify-ca", "require", "disable")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?![-.])[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.?$")
# The environment variables that carry the external database's address into the app's compose file.
HOST_VAR, PORT_VAR = "POSTGRES_HOST", "POSTGRES_PORT"
# libpq's (and psycopg's, asyncpg's) own variables: the TLS mode and the CA, in every service that connects.
SSLMODE_VAR, SSLROOTCERT_VAR = "PGSSLMODE", "PGSSLROOTCERT"

def is_hostname_or_address(value: str) -> bool:
    return is_address(value) or bool(_HOSTNAME_RE.fullmatch(value))

def check_external_db(merged: dict, read_file=None) -> list[str]:
    """The external database's settings (``read_file``: reads a local path's text, raising
    OSError; the CA is checked with it)."""
    problems = []
    host = merged["postgres_host"]
    if host and not is_hostname_or_address(host):
        problems.append(f"postgres_host must be a host name or an IP address, got {host!r}")
    port = merged["postgres_port"]
    if not 1 <= port <= 65535:
        problems.append(f"postgres_port must be a TCP port (1-65535), got {port!r}")
    mode, ca = merged["postgres_sslmode"], merged["postgres_ssl_ca"]
    if mode not in SSL_MODES:
        problems.append(f"postgres_sslmode must be one of {', '.join(SSL_MODES)}, got {mode!r}")
    if host and mode.startswith("verify-") and not ca:
        problems.append(f"postgres_ssl_ca is required with postgres_sslmode = {mode!r}: the CA certificate (PEM) "
                        "that signed the database's certificate (your provider publishes it), or choose "
                        "postgres_sslmode = 'require' (encrypted, not verified)")
    if ca and host and not mode.startswith("verify-"):
        problems.append(f"postgres_ssl_ca is only used with postgres_sslmode verify-ca or verify-full, got {mode!r}")
    if ca and host and read_file is not None:
        try:
            text = read_file(ca)
        except OSError as error:
            problems.append(f"postgres_ssl_ca: cannot read {ca}: {error.strerror or error}")
        else:
            if "-----BEGIN CERTIFICATE-----" not in text:
                problems.append(f"postgres_ssl_ca: {ca} holds no PEM certificate")
    if host and merged["backup_wal_archive"]:
        problems.append("backup_wal_archive archives the stack's own db service; with an external database "
                        "(postgres_host) point-in-time recovery is the provider's: set backup_wal_archive = False")
    if host and merged["drill_time"]:
        problems.append("drill_time rehearses the stack's own WAL archive; with an external database drill its "
                        "logical backups (drill_backup), and the provider's point-in-time recovery in its console")
    if host and (merged["restore_backup"] or merged["restore_time"] or merged["rollback_restore_backup"]):
        problems.append("restore.py replaces the stack's own database; with an external database restore with the "
                        "provider's point-in-time recovery, or pg_restore a backup of backup_dir by hand "
                        "(README, \"Several servers\")")
    return problems

# --- The app's compose configuration with an external database ----------------------

def url_host_port(url: str) -> tuple[str, int] | None:
    """The host and port of a postgresql URL (5432 when none), or None when it is not one. The
    password may hold / + = (base64, as the guide's compose file puts it in unencoded): the host
    is what follows the last @."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        return None
    address = re.split(r"[/?]", rest.rsplit("@", 1)[-1], maxsplit=1)[0]
    try:
        parts = urlsplit(f"//{address}")
        return (parts.hostname or ""), (parts.port or 5432)
    except ValueError:
        return None


DATABASE_URLS_KEY = "x-database-urls"  # kept in a stripped configuration: service -> variable -> (host, port)


def database_urls(config: dict) -> dict[str, dict[str, tuple[str, int]]]:
    """Where each service's database URLs point (service -> variable -> (host, port)), the db
    service's own environment aside: from a configuration stripped of its values
    (tasks.facts.compose keeps this much), else read from the environment."""
    if DATABASE_URLS_KEY in config:
        return {service: {variable: tuple(target) for variable, target in found.items()}
                for service, found in (config[DATABASE_URLS_KEY] or {}).items()}
    urls: dict[str, dict[str, tuple[str, int]]] = {}
    for name, service in (config.get("services") or {}).items():
        if name == layout.DB:
            continue
        environment = service.get("environment") or {}
        found = {variable: target for variable, value in environment.items()
                 if (target := url_host_port(str(value or ""))) is not None}
        if found:
            urls[name] = found
    return urls


def database_clients(config: dict) -> list[str]:
    """The services whose environment holds a database URL (they connect to the database)."""
    return list(database_urls(config))


def external_url_problems(config: dict, host: str, port: int) -> list[str]:
    """What the app's resolved compose configuration (resolved with POSTGRES_HOST and POSTGRES_PORT
    set) still points at another database than ``host:port``."""
    wanted = ((host.rstrip(".").lower(), port), (host, port))
    return [f"{service}: {variable} connects to {target[0]}:{target[1]}, not {host}:{port}"
            for service, found in database_urls(config).items()
            for variable, target in found.items() if target not in wanted]


def external_contract_error(problems: list[str]) -> ContractError:
    return ContractError(
        "with postgres_host, the app's compose file must build its database URLs from POSTGRES_HOST and "
        "POSTGRES_PORT; " + "; ".join(problems)
        + ". hint: write the host as ${POSTGRES_HOST:-db} and the port as ${POSTGRES_PORT:-5432} in "
        "DATABASE_URL and DATABASE_URL_ADMIN (one server keeps db:5432)")

@dataclass(frozen=True)
class ExternalDb:
    """The external database as the stack reaches it."""

    host: str
    port: int
    sslmode: str
    has_ca: bool

    @classmethod
    def of(cls, settings) -> "ExternalDb | None":
        if not settings.postgres_host:
            return None
        return cls(settings.postgres_host, settings.postgres_port, settings.postgres_sslmode,
                   bool(settings.postgres_ssl_ca))

    def environment(self) -> dict[str, str]:
        """PGSSLMODE (and PGSSLROOTCERT) for the services that connect to it."""
        values = {SSLMODE_VAR: self.sslmode}
        if self.has_ca:
            values[SSLROOTCERT_VAR] = layout.DB_CA_MOUNT
        return values

    def env_file_values(self) -> dict[str, str]:
        """What .env.production gives the app's compose file."""
        return {HOST_VAR: self.host, PORT_VAR: str(self.port)}


def literal_hosts(documents: list[dict]) -> list[str]:
    """Before Compose runs (the local checkout's files): the services whose database URL names its
    host literally instead of through a variable (``service: VARIABLE connects to HOST``)."""
    found = []
    for document in documents:
        for name, service in (document.get("services") or {}).items():
            if name == layout.DB or not isinstance(service, dict):
                continue
            environment = service.get("environment") or {}
            if isinstance(environment, list):
                environment = dict(item.split("=", 1) for item in environment if isinstance(item, str) and "=" in item)
            for variable, value in environment.items():
                text = str(value or "")
                if not text.startswith("postgres") or "@" not in text:
                    continue
                host = re.split(r"[:/?]", text.rsplit("@", 1)[1], maxsplit=1)[0]
                if host and "$" not in host:
                    found.append(f"{name}: {variable} connects to {host}")
    return found
