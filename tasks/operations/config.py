"""Operations that give Compose its configuration: .env.production and the deploy's
compose layer, both computed from the app's own files once they are on the server."""

from __future__ import annotations

import json
from io import StringIO

from pyinfra import host, logger
from pyinfra.api import HiddenValue, operation
from pyinfra.operations import files

from tasks import appspec, deploy_layer, facts, layout, render
from tasks.commands import compose, compose_files_only, parse_status, status_block
from tasks.digest import sha256
from tasks.operations.files import private_file
from tasks.remote import QuietFact, RemoteError, ask_quietly, executing, fail
from tasks.runtime import learnt
from tasks.secrets import EnvSources

HINT_CONFIG = (
    "hint: run the same on the server to see it: cd {app_dir} && docker compose --env-file "
    ".env.production config"
)


def unreadable(what: str, answer: dict, paths: layout.Paths) -> str:
    """A compose configuration Compose could not read: its own words, and how to see them again."""
    return "\n".join([f"{what}; its own words:"] + [f"  | {line}" for line in answer["error"][-15:]]
                     + [HINT_CONFIG.format(app_dir=paths.app_dir)])


def _repo_files(app_dir: str) -> tuple[list[str], dict[str, str]]:
    """(the repository's compose files, their texts and the env example)."""
    found = host.get_fact(facts.RepoFiles, app_dir=app_dir)
    return appspec.compose_file_names(list(found)), found


@operation()
def env_file(paths: layout.Paths, sources: EnvSources, announce: bool = False):
    """
    Ensure .env.production holds the guide's variables and every variable the app's
    compose file (and .env.production.example) asks for: 0600, root, never shown.

    + paths: the server's app and state directories
    + sources: where each value comes from (``tasks.secrets.EnvSources``)
    + announce: say where each of the app's variables comes from (names only), once the
      app's files are read here (in git mode: the preflight says it for an upload)

    Read from the app's files on the server, so that a git checkout is judged by what
    was fetched. A variable that nothing provides fails the deploy, naming it and
    where to set it, before anything is built, stopped or started.
    """
    try:
        compose_files, texts = _repo_files(paths.app_dir)
        needed = appspec.needed_variables({n: texts[n] for n in compose_files}, texts.get(layout.ENV_EXAMPLE))
    except appspec.ContractError as error:
        if executing():
            yield from fail(f"{error}\nhint: the app's repository must follow the guide's File Locations")
        else:
            host.noop("the env file is computed once the app's files are on the server")
        return
    resolved = sources.resolve(needed)
    if resolved.problems:
        yield from fail("\n".join(["Some variables of .env.production have no usable value:"]
                                  + [f"  - {problem}" for problem in resolved.problems]))
        return
    if announce and executing():
        host.log(sources.origins(resolved))
    compose_file = render.compose_file_value(compose_files, paths)
    yield from private_file._inner(
        path=paths.env_file,
        content=HiddenValue(render.env_file(resolved, compose_file)),
        preview=render.env_file(resolved, compose_file, masked=True),
    )


class ComposeConfig(QuietFact):
    """Returns what Compose resolves in the app directory (``docker compose config
    --format json``), with the deploy's layer or, given ``files``, from those files only:
    ``{"ok": True, "config": {...}}`` or ``{"ok": False, "error": [Compose's lines]}``.

    A quiet question: the resolved configuration holds the values of .env.production.
    Those (every service's environment, build arguments, inline configs and secrets)
    are dropped before it is kept; ``x-build-digest`` holds what the builds depend on."""

    def command(self, app_dir, files=None):
        args = ("config", "--format", "json")
        return status_block(compose_files_only(app_dir, list(files), *args) if files else compose(app_dir, *args))

    def process(self, output):
        ok, lines = parse_status(output)
        if not ok:
            return {"ok": False, "error": lines}
        try:
            config = json.loads("\n".join(lines))
        except ValueError:
            return {"ok": False, "error": ["docker compose config printed no JSON"]}
        digest = build_digest(config)
        for service in (config.get("services") or {}).values():
            service.pop("environment", None)
            if isinstance(service.get("build"), dict):
                service["build"].pop("args", None)
        for kind in ("configs", "secrets"):
            for entry in (config.get(kind) or {}).values():
                if isinstance(entry, dict):
                    entry.pop("content", None)
                    entry.pop("environment", None)
        config["x-build-digest"] = digest
        return {"ok": True, "config": config}


def compose_config(app_dir: str, files: list[str] | None = None) -> dict:
    """The ComposeConfig answer (quietly; from the run's snapshot when it can)."""
    try:
        return ask_quietly(ComposeConfig, app_dir=app_dir, files=list(files) if files else None)
    except RemoteError as error:
        return {"ok": False, "error": [str(error)]}


def build_digest(config: dict) -> str:
    """What besides the source decides the images: the services' build sections."""
    builds = {name: service.get("build") for name, service in (config.get("services") or {}).items()
              if service.get("build")}
    return sha256(json.dumps(builds, sort_keys=True))[:16]


@operation()
def compose_layer(settings, release):
    """
    Ensure the deploy's compose layer (``compose.deploy.yml``) fits the app's compose
    file: release image tags for the services it builds, the templated Caddyfile
    mounted where the repository mounts its own, and the guide's port rules (only
    Caddy public; the database at most on 127.0.0.1; 3000 and 8000 never published).

    + settings: the host's ``Settings``
    + release: the release being deployed (``tasks.release.ReleaseRef``)

    Then checks what Compose resolves with the layer: a port the layer could not
    correct stops the deploy, naming the service, the port and the fix.
    """
    paths = settings.paths
    if not executing():
        host.noop("the compose layer is computed from the app's configuration when the deploy runs")
        return
    try:
        compose_files, _texts = _repo_files(paths.app_dir)
    except appspec.ContractError as error:
        yield from fail(str(error))
        return
    own = compose_config(paths.app_dir, compose_files)
    if not own["ok"]:
        yield from fail(unreadable("docker compose cannot read the app's compose file", own, paths))
        return
    config = own["config"]
    digest = config["x-build-digest"]
    release_id = release.id()
    try:
        layer = deploy_layer.build_layer(
            config,
            app_dir=paths.app_dir,
            caddy_dir=paths.caddy_dir,
            caddyfile_template=settings.caddyfile == "template",
            db_on_localhost=settings.postgres_publish_localhost,
            release=release_id,
            build_digest=digest,
        )
    except appspec.ContractError as error:
        yield from fail(str(error))
        return
    for correction in layer.corrections:
        host.log_styled(f"Not published, whatever the app's compose file says: {correction}", fg="yellow",
                        log_func=logger.warning)
    header = (f"{render.MANAGED_NOTICE}\nThe deploy's layer over the app's compose file (COMPOSE_FILE in "
              f"{layout.ENV_FILE}): release images, Caddyfile, port rules.")
    written = False
    names = appspec.container_names(config)
    override = deploy_layer.dump_override(layer.document, header)
    checked = f"{paths.override}.checked"  # the checksum of the layer whose result passed the checks below
    for src, dest in (
        (override, paths.override),
        (render.stack_env(config.get("name") or "srq-hpn", names, layer.caddy.caddyfile), f"{paths.state_dir}/stack.env"),
    ):
        for command in files.put._inner(src=StringIO(src), dest=dest, mode="644"):
            written = True
            yield command
    state = learnt()
    state.built, state.release, state.build_digest = layer.built, release_id, digest
    state.caddyfile_in_container = layer.caddy.caddyfile
    if not written and host.get_fact(facts.TextFile, path=checked) == sha256(override):
        # The layer is as the last run left it, over the same configuration, and what
        # it resolves to passed the checks then. The app's own configuration tells the
        # rest (names, volumes, services) as well.
        state.config = config
        host.noop("the deploy's layer fits the app's compose file")
        return
    merged = compose_config(paths.app_dir)
    if not merged["ok"]:
        yield from fail(unreadable("docker compose cannot read the app's compose file with the deploy's layer",
                                   merged, paths))
        return
    problems = deploy_layer.exposure_problems(merged["config"], settings.postgres_publish_localhost)
    if problems:
        yield from fail("\n".join(
            ["The app's compose configuration still publishes ports against the guide's rules:"]
            + [f"  - {problem}" for problem in problems]
            + ["hint: remove those ports from the app's compose file (the deploy's layer needs Compose 2.24.4+ "
               "to override them)"]
        ))
        return
    yield from files.put._inner(src=StringIO(sha256(override) + "\n"), dest=checked, mode="644")
    state.config = merged["config"]
