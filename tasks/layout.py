"""The names the stack shares: compose services, container names, files and
directories on the server. Tasks, templates, server scripts and tests all read
them from here.

The app's own repository (the contract, see the guide's "File Locations") is
checked out in the app directory; everything the deploy adds lives beside it,
in the state directory, and reaches Compose through ``COMPOSE_FILE`` in the env
file, so the guide's own commands see exactly what the deploy runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The compose project of the guide's compose file (the app's own file may name another).
PROJECT = "srq-hpn"
# The guide's compose services, and the container names its commands use.
DB, API, WEB, CADDY = "db", "api", "web", "caddy"
SERVICES = (DB, API, WEB, CADDY)
CONTAINERS = {service: f"srq-hpn-{service}" for service in SERVICES}
# Services Caddy sends traffic to (upstream port): swapped without downtime.
UPSTREAMS = {API: 8000, WEB: 3000}
# The one-off migration, as the guide runs it: run --rm api alembic upgrade head.
MIGRATE_SERVICE = API

ENV_FILE = ".env.production"
ENV_EXAMPLE = ".env.production.example"
# Compose's own file names, in the order Compose looks for them.
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
COMPOSE_OVERRIDES = (
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
)
# The files at the root of the app's repository that the deploy reads.
CONTRACT_FILES = COMPOSE_FILES + COMPOSE_OVERRIDES + (ENV_EXAMPLE,)

# Directories that must never be the app, state or backup directory themselves.
SYSTEM_DIRS = ("", "/etc", "/usr", "/var", "/var/lib", "/var/backups", "/root", "/home", "/opt", "/srv", "/tmp")
# ... nor be inside: the system's own trees, Docker's, and the deploy's programs and configuration.
SYSTEM_TREES = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/dev", "/proc", "/sys",
                "/run", "/root", "/var/run", "/var/lib/docker", "/var/lib/containerd")

# Defaults of the directory settings (group_data/all.py repeats them).
APP_DIR = "/opt/srq-hpn"
STATE_DIR = "/var/lib/srq-hpn"
# The deploy's server-side programs (waits, swaps, backups, checks), and what they
# need to know (deploy.env, no secret).
LIB_DIR = "/usr/local/lib/srq-hpn"
CONFIG_DIR = "/etc/srq-hpn"
DEPLOY_ENV = f"{CONFIG_DIR}/deploy.env"
# git mode: the deploy key of the app's repository, and the git server's host key.
GIT_DEPLOY_KEY = "/root/.ssh/srq-hpn-deploy-key"
GIT_KNOWN_HOSTS = f"{CONFIG_DIR}/git_known_hosts"
# While a fresh install pulls the database's image (before anything else is there),
# the process id of that pull: the release's builds start once it is gone.
EARLY_PULL_PID = "/run/srq-hpn-early-pull.pid"

# The monitor: a systemd timer that runs the checks and alerts a webhook, whose URL
# (it may hold a token) is kept in a root-only file.
MONITOR_TIMER = "srq-hpn-monitor.timer"
MONITOR_SERVICE = "srq-hpn-monitor.service"
MONITOR_WEBHOOK_FILE = f"{CONFIG_DIR}/monitor-webhook"
SYSTEMD_DIR = "/etc/systemd/system"

# Inside the containers.
CADDY_CONFIG_DIR = "/etc/caddy"
CADDY_ROOT_CA = "/data/caddy/pki/authorities/local/root.crt"
# A private ACME server's root certificate(s) (caddy_acme_ca_root), where Caddy reads them.
CADDY_ACME_CA_ROOT = "/etc/srq-hpn/acme-ca-root.pem"
PGDATA_PREFIX = "/var/lib/postgresql"

# Labels the deploy puts on what it builds.
BUILD_LABEL = "org.srq-hpn.build"
RELEASE_LABEL = "org.srq-hpn.release"

# Backups (see templates/server/srq-hpn-backup): one directory per backup, named
# srq-hpn-<UTC time>[-<label>], holding the dump, the roles and a manifest.
BACKUP_DIR = "/var/backups/srq-hpn"
BACKUP_PREFIX = "srq-hpn-"
BACKUP_NAME_PATTERN = r"^srq-hpn-[0-9]{8}T[0-9]{6}Z(-[A-Za-z0-9._+-]{1,80})?$"
BACKUP_FILES = ("db.dump", "globals.sql")
BACKUP_MANIFEST = "manifest.json"
BACKUP_SERVICE = "srq-hpn-backup.service"
BACKUP_TIMER = "srq-hpn-backup.timer"
# The off-server copy's files on the server (root only): the restic repository's
# password, the SSH client configuration and known hosts, and the SSH key.
OFFSITE_CONFIG_DIR = f"{CONFIG_DIR}/backup"
OFFSITE_PASSWORD_FILE = f"{OFFSITE_CONFIG_DIR}/restic-password"
OFFSITE_SSH_CONFIG = f"{OFFSITE_CONFIG_DIR}/ssh_config"
OFFSITE_KNOWN_HOSTS = f"{OFFSITE_CONFIG_DIR}/known_hosts"
OFFSITE_SSH_KEY = "/root/.ssh/srq-hpn-backup-key"
OFFSITE_SSH_HOST = "srq-hpn-offsite"  # the Host entry of that SSH configuration
# Point-in-time recovery: the WAL archive and base backups, in this directory of the
# backup directory (see templates/server/wal.sh), mounted into the db container, whose
# archive_command runs archive-wal.sh from the server programs' directory, mounted too.
WAL_SUBDIR = "wal"
WAL_DIR = f"{BACKUP_DIR}/{WAL_SUBDIR}"  # with the default backup_dir; one directory per cluster in it
WAL_MOUNT = "/srq-hpn-wal"
WAL_LIB_MOUNT = "/srq-hpn-lib"
WAL_ARCHIVE_COMMAND = f"sh {WAL_LIB_MOUNT}/archive-wal.sh %p %f"
WAL_SHIP_SERVICE = "srq-hpn-wal-ship.service"
WAL_SHIP_TIMER = "srq-hpn-wal-ship.timer"
WAL_SHIP_INTERVAL = 15
# Restore drills run in a scratch database container labelled so.
DRILL_LABEL = "org.srq-hpn.drill"
# Migration rehearsals: a scratch database container, its internal network and the one-off
# migration container, labelled so (with the rehearsing process's id).
REHEARSAL_LABEL = "org.srq-hpn.rehearsal"
# While a restore runs, Caddy answers 503 with Retry-After when this file exists
# (in Caddy's data volume, which the caddy image always has).
MAINTENANCE_FLAG = "/data/srq-hpn-maintenance"

# Log shipping (log_shipping_url): the containers log to the journal (Docker's journald
# driver, each line tagged with its container's name), and systemd-journal-upload (from
# Debian's and Ubuntu's systemd-journal-remote package) sends the journal to the collector,
# configured by the deploy's drop-in; it records the last entry the collector took in its
# state file.
LOG_DRIVER = "journald"
DEFAULT_LOG_DRIVER = "json-file"  # daemon.json's, rotated (docker_log_max_size, docker_log_max_file)
LOG_TAG = "{{.Name}}"
LOG_SHIPPING_PACKAGE = "systemd-journal-remote"
JOURNAL_UPLOAD_SERVICE = "systemd-journal-upload.service"
JOURNAL_UPLOAD_DROP_IN = "/etc/systemd/journal-upload.conf.d/srq-hpn.conf"
JOURNAL_UPLOAD_STATE = "/var/lib/systemd/journal-upload/state"

# An external database (postgres_host): its CA certificate on the server and inside the
# containers that connect to it; the compose profile (never activated) that keeps the app's
# db service from starting.
DB_CA_FILE = f"{CONFIG_DIR}/db-ca.pem"
DB_CA_MOUNT = "/run/srq-hpn/db-ca.pem"
DB_OFF_PROFILE = "srq-hpn-external-database"
# The server programs reach an external database from a client container of the db service's image, labelled so.
DB_CLIENT_LABEL = "org.srq-hpn.db-client"
# Several servers: an app server's Caddy answers the edge on this port of its private address
# (plain HTTP); the edge runs Caddy alone, a compose project of its own (files in the state
# directory's edge/).
EDGE_PORT = 80
EDGE_PROJECT = "srq-hpn-edge"
EDGE_CONTAINER = "srq-hpn-edge"
EDGE_IMAGE = "caddy:2"  # the guide's Caddy
EDGE_SUBDIR = "edge"
# The edge's checks of each app server (Caddy's active health checks): the guide's health
# endpoint for /api/*, the web's page for the rest; how often, how long an answer may take;
# how long a request keeps trying the other servers, and how long a server that failed a
# request is left out (passive health).
EDGE_HEALTH_URIS = {API: "/api/health", WEB: "/"}
EDGE_HEALTH_INTERVAL, EDGE_HEALTH_TIMEOUT = "2s", "2s"
EDGE_TRY_INTERVAL, EDGE_FAIL_DURATION = "250ms", "10s"

# The volume that held the data before the app repository's compose.yml became
# the contract (the previous release of this deploy wrote its own compose.yml).
PREVIOUS_DB_VOLUME = "srq-hpn_postgres_data"


def own_directory(value: str) -> bool:
    """Whether a directory setting names a directory of its own: absolute, plain characters,
    no `.`, `..` or empty component (so that no spelling of it is a system directory), not
    a system directory, nor inside the system's trees."""
    if not re.fullmatch(r"/[A-Za-z0-9._/-]+", value):
        return False
    parts = value.rstrip("/").split("/")[1:]
    if any(part in ("", ".", "..") for part in parts):
        return False
    path = "/" + "/".join(parts)
    return path not in SYSTEM_DIRS and not any(path == tree or path.startswith(tree + "/") for tree in SYSTEM_TREES)


@dataclass(frozen=True)
class Paths:
    """Where things are on the server, for one app and state directory."""

    app_dir: str = APP_DIR
    state_dir: str = STATE_DIR

    @property
    def env_file(self) -> str:
        return f"{self.app_dir}/{ENV_FILE}"

    @property
    def override(self) -> str:
        """The deploy's compose layer (hardening, Caddyfile, release images)."""
        return f"{self.state_dir}/compose.deploy.yml"

    @property
    def previous_override(self) -> str:
        """The layer of the release that ran before (a failed swap puts the service back on it)."""
        return f"{self.state_dir}/compose.deploy.previous.yml"

    @property
    def edge_dir(self) -> str:
        """The edge's compose file and Caddyfile (on an edge server)."""
        return f"{self.state_dir}/{EDGE_SUBDIR}"

    @property
    def edge_compose(self) -> str:
        return f"{self.edge_dir}/compose.yml"

    @property
    def edge_caddyfile(self) -> str:
        return f"{self.edge_dir}/Caddyfile"

    @property
    def caddy_dir(self) -> str:
        return f"{self.state_dir}/caddy"

    @property
    def caddyfile(self) -> str:
        return f"{self.caddy_dir}/Caddyfile"

    @property
    def acme_ca_root(self) -> str:
        """A private ACME server's root certificate(s), mounted into Caddy (caddy_acme_ca_root)."""
        return f"{self.caddy_dir}/acme-ca-root.pem"

    @property
    def incoming(self) -> str:
        """Where an uploaded source is unpacked before it is applied."""
        return f"{self.state_dir}/incoming"

    @property
    def source_manifest(self) -> str:
        """The files of the last uploaded source (and their checksums)."""
        return f"{self.state_dir}/source.manifest"

    @property
    def releases(self) -> str:
        return f"{self.state_dir}/releases"

    @property
    def lock(self) -> str:
        return f"{self.state_dir}/deploy.lock"

    @property
    def audit_log(self) -> str:
        return f"{self.state_dir}/audit.log"

    @property
    def secrets_record(self) -> str:
        """When each secret last changed (names and dates only, never values)."""
        return f"{self.state_dir}/secrets.json"

    @property
    def drill_record(self) -> str:
        """The last restore drill's result (JSON with "result": "passed" or "failed")."""
        return f"{self.drills}/last.json"

    @property
    def monitor_dir(self) -> str:
        """What the monitor last told the webhook about each item, and its last run."""
        return f"{self.state_dir}/monitor"

    @property
    def drills(self) -> str:
        """Restore drill records: last.json and history.jsonl."""
        return f"{self.state_dir}/drills"

    @property
    def migration_record(self) -> str:
        """The last migration's result: rehearsed on a copy of production or not, deployed or
        stopped (JSON, written by srq-hpn-migrate; history.jsonl beside it)."""
        return f"{self.state_dir}/migrations/last.json"

    @property
    def wal_shipped(self) -> str:
        """When the WAL archive was last copied off the server, and its newest file then."""
        return f"{self.state_dir}/wal-shipped"

    @property
    def offsite_record(self) -> str:
        """The off-server repository the deploy set up (its address, no secret)."""
        return f"{self.state_dir}/offsite-repository"

    @property
    def stack_env(self) -> str:
        """What the deploy learnt from the app's compose configuration (project, container names)."""
        return f"{self.state_dir}/stack.env"

    @property
    def db_volume_record(self) -> str:
        """The docker volume that holds the database, as of the last deploy."""
        return f"{self.state_dir}/db-volume"
