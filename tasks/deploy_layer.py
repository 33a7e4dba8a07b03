"""The deploy's compose layer (``compose.deploy.yml``), built from the configuration
Compose resolves for the app's repository: pure code, unit-tested.

Compose merges the layer by itself (``COMPOSE_FILE`` in ``.env.production``), so the
guide's commands on the server see it too. It mounts the templated Caddyfile where
the repository mounts its own, tags the release's images, and enforces the guide's
port rules: only Caddy public; 5432 at most on 127.0.0.1; 3000 and 8000 never
published.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from tasks import layout
from tasks.appspec import ContractError
from tasks.external_db import ExternalDb, database_clients
from tasks.layout import EDGE_PORT

PUBLIC_PORTS = {(80, "tcp"), (443, "tcp"), (443, "udp")}
NEVER_PUBLISHED = {layout.UPSTREAMS[layout.API], layout.UPSTREAMS[layout.WEB]}
LOOPBACK = ("127.0.0.1", "::1")


class Override(list):
    """A YAML sequence tagged !override: replaces the repository's list instead of merging."""


class Reset(list):
    """A YAML !reset []: removes the repository's list."""


class OverrideMap(dict):
    """A YAML mapping tagged !override: replaces the repository's mapping instead of merging."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Override, lambda dumper, data: dumper.represent_sequence("!override", list(data)))
_Dumper.add_representer(Reset, lambda dumper, data: dumper.represent_sequence("!reset", []))
_Dumper.add_representer(OverrideMap, lambda dumper, data: dumper.represent_mapping("!override", dict(data)))


def journald_logging() -> OverrideMap:
    """A service's logging with log shipping: the server's journal, each line tagged with the
    container's name; it replaces whatever logging the app's compose file gives the service
    (another driver's options would not apply)."""
    return OverrideMap(driver=layout.LOG_DRIVER, options={"tag": layout.LOG_TAG})


def dump_override(document: dict, header: str) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


@dataclass(frozen=True)
class Port:
    target: int
    protocol: str = "tcp"
    published: str = ""
    host_ip: str = ""

    @classmethod
    def of(cls, entry: dict) -> "Port":
        return cls(
            target=int(entry.get("target")),
            protocol=entry.get("protocol") or "tcp",
            published=str(entry.get("published") or ""),
            host_ip=entry.get("host_ip") or "",
        )

    @property
    def public(self) -> bool:
        return self.host_ip not in LOOPBACK

    def spec(self) -> dict:
        entry = {"target": self.target, "published": self.published or str(self.target), "protocol": self.protocol}
        if self.host_ip:
            entry["host_ip"] = self.host_ip
        return entry

    def __str__(self) -> str:
        address = f"{self.host_ip}:" if self.host_ip else ""
        published = f"{self.published}:" if self.published else ""
        return f"{address}{published}{self.target}/{self.protocol}"


def allowed_ports(service: str, ports: list[Port], db_on_localhost: bool) -> tuple[list[Port], list[str]]:
    """The guide's port rules for one service: (ports kept, why each other one was dropped)."""
    kept, dropped = [], []
    for port in ports:
        published = int(port.published or port.target) if (port.published or str(port.target)).isdigit() else None
        if service == layout.CADDY:
            if (port.target, port.protocol) in PUBLIC_PORTS:
                kept.append(port)
            else:
                dropped.append(f"{service}: {port} (Caddy publishes only 80, 443 and 443/udp)")
        elif service == layout.DB and (port.public or not db_on_localhost):
            dropped.append(f"{service}: {port} (the database is published on 127.0.0.1 only, "
                           "and only with postgres_publish_localhost)")
        elif service == layout.DB:
            kept.append(port)
        elif port.target in NEVER_PUBLISHED or published in NEVER_PUBLISHED:
            dropped.append(f"{service}: {port} (3000 and 8000 are never published)")
        elif port.public:
            dropped.append(f"{service}: {port} (only Caddy publishes public ports)")
        else:
            kept.append(port)
    if service == layout.DB and db_on_localhost and not any(p.target == 5432 for p in kept):
        kept.append(Port(5432, "tcp", "5432", "127.0.0.1"))
    return kept, dropped


@dataclass(frozen=True)
class CaddyMount:
    """Where the caddy service reads its Caddyfile: a directory or a file mount target."""

    target: str
    is_file: bool

    @property
    def caddyfile(self) -> str:
        return self.target if self.is_file else f"{self.target}/Caddyfile"


def caddy_mount(service: dict, app_dir: str) -> CaddyMount:
    """The mount through which the repository gives Caddy its Caddyfile."""
    for volume in service.get("volumes") or []:
        if volume.get("type") != "bind":
            continue
        target, source = volume.get("target", ""), volume.get("source", "")
        if target == f"{layout.CADDY_CONFIG_DIR}/Caddyfile" or source.endswith("/Caddyfile"):
            return CaddyMount(target, is_file=True)
        if target == layout.CADDY_CONFIG_DIR or source.rstrip("/") == f"{app_dir.rstrip('/')}/caddy":
            return CaddyMount(target, is_file=False)
    return CaddyMount(layout.CADDY_CONFIG_DIR, is_file=False)


@dataclass(frozen=True)
class WalArchive:
    """Continuous WAL archiving of the db service: where the archive is on the server, and
    how long a commit may wait before its segment is archived (archive_timeout, seconds)."""

    directory: str
    timeout: int
    lib_dir: str = layout.LIB_DIR


def archiving_command(command, wal: WalArchive) -> list[str]:
    """The db service's command with WAL archiving on (its own settings kept, the
    archiving ones last, so they win): ``command`` as Compose resolved it (None: the
    image's, ``postgres``). A command that does not start the server directly is refused."""
    own = list(command) if command else ["postgres"]
    if not own or own[0] not in ("postgres", "docker-entrypoint.sh"):
        raise ContractError(
            f"the db service's command ({' '.join(own)[:80]}) does not start postgres directly, so the deploy "
            "cannot turn WAL archiving on for it; make it `postgres -c ...`, or set backup_wal_archive = False")
    flags = []
    if not any("wal_level=logical" in part for part in own):
        flags += ["-c", "wal_level=replica"]
    flags += ["-c", "archive_mode=on", "-c", f"archive_command={layout.WAL_ARCHIVE_COMMAND}",
              "-c", f"archive_timeout={wal.timeout}"]
    return own + flags


def db_service_off(config: dict) -> dict:
    """With an external database: the entries that keep the app's db service from starting
    (a profile never activated) and every other service from waiting on it (their other
    dependencies kept)."""
    entries: dict = {layout.DB: {"profiles": [layout.DB_OFF_PROFILE]}}
    for name, service in (config.get("services") or {}).items():
        depends = service.get("depends_on") or {}
        if name == layout.DB or layout.DB not in depends:
            continue
        others = {dep: spec for dep, spec in depends.items() if dep != layout.DB}
        entries[name] = {"depends_on": OverrideMap(others) if others else Reset()}
    return entries


@dataclass
class Layer:
    """compose.deploy.yml as data, and what it corrected in the repository's compose."""

    document: dict
    corrections: list[str]
    caddy: CaddyMount
    built: list[str]  # services whose images the deploy builds


def build_layer(
    config: dict,
    *,
    app_dir: str,
    caddy_dir: str,
    caddyfile_template: bool,
    db_on_localhost: bool,
    release: str,
    tags: dict[str, str],
    acme_ca_root: str = "",
    wal: WalArchive | None = None,
    journald: bool = False,
    external_db: ExternalDb | None = None,
    private_address: str = "",
) -> Layer:
    """The deploy's compose layer for the repository's resolved configuration: each image the
    app builds tagged ``tags[service]`` (the checksum of its build context's files), and
    labelled with the digest of its build settings and the release that built it;
    ``acme_ca_root``: the server's copy of a private ACME server's root, mounted into Caddy;
    ``wal``: the db service archives its WAL there (point-in-time recovery);
    ``journald``: every service logs to the server's journal (log shipping);
    ``external_db``: the app's db service is not started, its clients reach that database (TLS);
    ``private_address``: an app server behind an edge: Caddy publishes port 80 there, and nothing else."""
    services = config.get("services") or {}
    missing = [name for name in layout.SERVICES if name not in services]
    if missing:
        raise ContractError(
            f"the app's compose file has no service {', '.join(missing)}: the guide's stack is "
            f"{', '.join(layout.SERVICES)} (caddy in front, web and api behind it, db)"
        )
    project = config.get("name") or "srq-hpn"
    layer: dict = {}
    corrections: list[str] = []
    built = []
    caddy = caddy_mount(services[layout.CADDY], app_dir)
    off = db_service_off(config) if external_db else {}
    clients = database_clients(config) if external_db else []
    for name, service in services.items():
        if service.get("network_mode") == "host":
            raise ContractError(
                f"service {name} uses network_mode: host, which publishes every port it opens; "
                "remove it from the app's compose file (the deploy cannot restrict such a service)"
            )
        entry: dict = dict(off.get(name, {}))
        if service.get("build"):
            entry["image"] = f"{project}-{name}:{tags.get(name, release)}"
            digest = (config.get("x-build-digests") or {}).get(name, "")
            entry["build"] = {"labels": {layout.BUILD_LABEL: digest, layout.RELEASE_LABEL: release}}
            built.append(name)
        ports = [Port.of(p) for p in service.get("ports") or []]
        kept, dropped = allowed_ports(name, ports, db_on_localhost)
        if name == layout.CADDY and private_address:
            kept = [Port(EDGE_PORT, "tcp", str(EDGE_PORT), private_address)]
            dropped = [f"{name}: {port} (an app server's Caddy answers the edge on {private_address}:{EDGE_PORT} only)"
                       for port in ports if port.target != EDGE_PORT]
        elif name == layout.DB and external_db:
            kept, dropped = [], []
        corrections += dropped
        if dropped or (name == layout.DB and kept != ports) or (name == layout.CADDY and private_address):
            entry["ports"] = Override(p.spec() for p in kept) if kept else Reset()
        if name == layout.CADDY and caddyfile_template:
            source = f"{caddy_dir}/Caddyfile" if caddy.is_file else caddy_dir
            entry["volumes"] = [{"type": "bind", "source": source, "target": caddy.target, "read_only": True}]
            if acme_ca_root:
                entry["volumes"].append({"type": "bind", "source": acme_ca_root, "target": layout.CADDY_ACME_CA_ROOT,
                                         "read_only": True})
        if name == layout.DB and wal is not None:
            entry["command"] = archiving_command(service.get("command"), wal)
            entry["volumes"] = [
                {"type": "bind", "source": wal.directory, "target": layout.WAL_MOUNT},
                {"type": "bind", "source": wal.lib_dir, "target": layout.WAL_LIB_MOUNT, "read_only": True},
            ]
        if name in clients:
            entry["environment"] = external_db.environment()
            if external_db.has_ca:
                entry.setdefault("volumes", []).append(
                    {"type": "bind", "source": layout.DB_CA_FILE, "target": layout.DB_CA_MOUNT, "read_only": True})
        if journald:
            entry["logging"] = journald_logging()
        if entry:
            layer[name] = entry
    return Layer({"services": layer}, corrections, caddy, built)


def exposure_problems(config: dict, db_on_localhost: bool) -> list[str]:
    """What the merged configuration still publishes against the guide's rules."""
    problems = []
    for name, service in (config.get("services") or {}).items():
        ports = [Port.of(p) for p in service.get("ports") or []]
        _kept, dropped = allowed_ports(name, ports, db_on_localhost)
        problems += dropped
        if service.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host")
    return problems
