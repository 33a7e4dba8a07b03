"""The app repository's contract, read and enforced: pure code, unit-tested.

The repository ships the production stack (the guide's "File Locations"): its
compose file, ``caddy/Caddyfile``, ``db/init/``, ``apps/api/alembic/``. From its
compose file this module learns which variables ``.env.production`` must hold;
from the configuration Compose resolves (``docker compose config --format json``)
it builds the deploy's own compose layer (``compose.deploy.yml``): the templated
Caddyfile mounted where the repository mounts its own, release image tags, and
the port rules of the guide (only Caddy public; 5432 at most on 127.0.0.1; 3000
and 8000 never published).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from tasks import layout

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}, ${NAME:+alt}, $NAME; $$ escapes.
_INTERPOLATION = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
# Compose's own variables: set by Compose or by the deploy, never by the operator.
COMPOSE_OWN = {"COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR"}
PUBLIC_PORTS = {(80, "tcp"), (443, "tcp"), (443, "udp")}
NEVER_PUBLISHED = {layout.UPSTREAMS[layout.API], layout.UPSTREAMS[layout.WEB]}
LOOPBACK = ("127.0.0.1", "::1")


class ContractError(ValueError):
    """The repository's files do not fit the contract; the message says what and how to fix it."""


@dataclass
class Variables:
    """Variables the compose file interpolates, by need."""

    required: dict[str, set[str]] = field(default_factory=dict)  # name -> where (services, files)
    optional: set[str] = field(default_factory=set)

    def need(self, name: str, where: str) -> None:
        if name not in COMPOSE_OWN:
            self.required.setdefault(name, set()).add(where)


def _strings(node, path=()):
    """Every string value of a parsed YAML document, with its path (keys are not interpolated)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, path + (str(key),))
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, path)
    elif isinstance(node, str):
        yield path, node


def _scan(text: str, where: str, found: Variables) -> None:
    for match in _INTERPOLATION.finditer(text):
        escaped, braced, operator, argument, bare = match.groups()
        if escaped:
            continue
        name = braced or bare
        if operator in (None, "?", ":?"):
            found.need(name, where)
        else:  # a default (- :-) or an alternative (+ :+): optional, and so is what the default names
            found.optional.add(name)
            if argument:
                inner = Variables()
                _scan(argument, where, inner)
                found.optional |= set(inner.required) | inner.optional


def compose_document(compose_text: str, source: str = "compose.yml") -> dict:
    """A compose file, parsed (its YAML only: Compose itself resolves it on the server)."""
    try:
        document = yaml.safe_load(compose_text) or {}
    except yaml.YAMLError as error:
        raise ContractError(f"{source} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ContractError(f"{source} is not a compose file (its top level is not a mapping)")
    return document


def compose_variables(compose_text: str, source: str = "compose.yml") -> Variables:
    """Which variables a compose file needs: those interpolated without a default."""
    document = compose_document(compose_text, source)
    found = Variables()
    for path, value in _strings(document):
        where = f"{source} ({path[1]})" if len(path) > 1 and path[0] == "services" else source
        _scan(value, where, found)
    for name in list(found.optional):
        if name in found.required:
            found.optional.discard(name)
    return found


def example_variables(text: str) -> list[str]:
    """The variable names of a dotenv file such as .env.production.example."""
    names = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export "):]
        if line and not line.startswith("#") and "=" in line:
            name = line.split("=", 1)[0].strip()
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                names.append(name)
    return names


def needed_variables(compose_texts: dict[str, str], example_text: str | None) -> dict[str, set[str]]:
    """Every variable .env.production must hold, with where it is asked for."""
    needed: dict[str, set[str]] = {}
    for name, text in compose_texts.items():
        for variable, where in compose_variables(text, name).required.items():
            needed.setdefault(variable, set()).update(where)
    for variable in example_variables(example_text or ""):
        needed.setdefault(variable, set()).add(layout.ENV_EXAMPLE)
    for variable in COMPOSE_OWN:
        needed.pop(variable, None)
    return needed


def compose_file_names(present: list[str]) -> list[str]:
    """The repository's compose files as Compose itself would pick them: the first
    of compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml, then its
    override file, if any."""
    main = next((name for name in layout.COMPOSE_FILES if name in present), None)
    if main is None:
        raise ContractError(
            "the app's repository has no compose file at its root (compose.yml, as the guide's "
            "\"File Locations\" table says; or compose.yaml, docker-compose.yml)"
        )
    override = next((name for name in layout.COMPOSE_OVERRIDES if name in present), None)
    return [main] + ([override] if override else [])


# --- The deploy's compose layer --------------------------------------------------------


class Override(list):
    """A YAML sequence tagged !override: replaces the repository's list instead of merging."""


class Reset(list):
    """A YAML !reset []: removes the repository's list."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Override, lambda dumper, data: dumper.represent_sequence("!override", list(data)))
_Dumper.add_representer(Reset, lambda dumper, data: dumper.represent_sequence("!reset", []))


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
    build_digest: str,
) -> Layer:
    """The deploy's compose layer for the repository's resolved configuration."""
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
    for name, service in services.items():
        if service.get("network_mode") == "host":
            raise ContractError(
                f"service {name} uses network_mode: host, which publishes every port it opens; "
                "remove it from the app's compose file (the deploy cannot restrict such a service)"
            )
        entry: dict = {}
        if service.get("build"):
            entry["image"] = f"{project}-{name}:{release}"
            entry["build"] = {"labels": {layout.BUILD_LABEL: build_digest, layout.RELEASE_LABEL: release}}
            built.append(name)
        ports = [Port.of(p) for p in service.get("ports") or []]
        kept, dropped = allowed_ports(name, ports, db_on_localhost)
        corrections += dropped
        if dropped or (name == layout.DB and kept != ports):
            entry["ports"] = Override(p.spec() for p in kept) if kept else Reset()
        if name == layout.CADDY and caddyfile_template:
            source = f"{caddy_dir}/Caddyfile" if caddy.is_file else caddy_dir
            entry["volumes"] = [{"type": "bind", "source": source, "target": caddy.target, "read_only": True}]
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


def db_volume(config: dict) -> str | None:
    """The docker volume (full name) that holds the database's data, if it is a named volume."""
    service = (config.get("services") or {}).get(layout.DB) or {}
    for volume in service.get("volumes") or []:
        if volume.get("type") == "volume" and volume.get("target", "").startswith(layout.PGDATA_PREFIX):
            key = volume.get("source")
            declared = (config.get("volumes") or {}).get(key) or {}
            return declared.get("name") or f"{config.get('name')}_{key}"
    return None


def container_names(config: dict) -> dict[str, str]:
    """Container name of each service (compose's default when the file sets none)."""
    project = config.get("name") or "srq-hpn"
    return {
        name: service.get("container_name") or f"{project}-{name}-1"
        for name, service in (config.get("services") or {}).items()
    }


def healthcheck(service: dict) -> dict | None:
    check = service.get("healthcheck") or None
    if not check or check.get("disable") or (check.get("test") or [None])[0] == "NONE":
        return None
    return check
