"""The app repository's contract, read and enforced: pure code, unit-tested.

The repository ships the production stack (the guide's "File Locations"): its
compose file, ``caddy/Caddyfile``, ``db/init/``, ``apps/api/alembic/``. From its
compose file this module learns which variables ``.env.production`` must hold,
and from the configuration Compose resolves (``docker compose config --format
json``) the containers and the database's volume. The deploy's own compose layer
on top of it is built in tasks.layer.
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


def pulled_images(documents: list[dict]) -> list[str]:
    """The images the compose files name for services that build none, the database's
    first: what a fresh server can start pulling before anything else is there. An
    image name with a variable is left to Compose (it alone interpolates it)."""
    images: dict[str, str | None] = {}
    for document in documents:  # a later file (the override) wins, as in Compose
        for name, service in (document.get("services") or {}).items():
            service = service or {}
            if service.get("build") is not None:
                images[name] = None
            elif isinstance(service.get("image"), str) and images.get(name, "") is not None:
                images[name] = service["image"]
    ordered = sorted(images.items(), key=lambda item: item[0] != layout.DB)
    named = [image for _, image in ordered if image and "$" not in image]
    return list(dict.fromkeys(named))


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


def service_variables(compose_texts: dict[str, str]) -> dict[str, set[str]]:
    """The variables each service's definition interpolates, with a default or without
    (to say which variables a service's recreation is due to)."""
    found: dict[str, set[str]] = {}
    for name, text in compose_texts.items():
        for service, definition in ((compose_document(text, name).get("services") or {}).items()):
            variables = Variables()
            for _path, value in _strings(definition or {}):
                _scan(value, name, variables)
            found.setdefault(service, set()).update(set(variables.required) | variables.optional)
    return found


def build_context(documents: list[dict], service: str) -> str | None:
    """A service's build context, relative to the repository ("" for its root), as the
    compose files write it (the last file that sets it wins); None when it builds none."""
    context = None
    for document in documents:
        build = ((document.get("services") or {}).get(service) or {}).get("build")
        if isinstance(build, str):
            context = build
        elif isinstance(build, dict):
            context = build.get("context", ".")
    if context is None:
        return None
    context = context.strip()
    while context.startswith("./"):
        context = context[2:]
    return "" if context in (".", "") else context.rstrip("/")


def services_of(documents: list[dict]) -> list[str]:
    """The services the compose files define, in their order (the first file's first)."""
    return list(dict.fromkeys(name for document in documents for name in (document.get("services") or {})))


def building_services(documents: list[dict]) -> list[str]:
    """The services the compose files give a build (their images are the release's)."""
    return [name for name in services_of(documents) if build_context(documents, name) is not None]
