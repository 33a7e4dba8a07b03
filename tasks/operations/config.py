"""Operations that give Compose its configuration: .env.production and the deploy's
compose layer, as the plan resolved them from the release's files."""

from __future__ import annotations

from io import StringIO

from pyinfra import host, logger
from pyinfra.api import HiddenValue, operation
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files

from tasks import layout
from tasks.commands import shell
from tasks.digest import sha256
from tasks.operations.files import private_file
from tasks.operations.plan import later
from tasks.plan import Plan


@operation()
def env_file(paths: layout.Paths, plan: Plan):
    """
    Ensure .env.production holds the guide's variables and every variable the release's
    compose file (and .env.production.example) asks for, as the plan resolved them: 0600,
    root, never shown.

    + paths: the server's app and state directories
    + plan: this run's plan (tasks.plan.Plan): the file's text
    """
    if not plan.env_text:  # a git branch the server could not read before the run
        yield from later("the env file is written once the release is fetched")
        return
    yield from private_file._inner(path=paths.env_file, content=HiddenValue(plan.env_text), preview=plan.env_preview)


@operation()
def compose_layer(settings, plan: Plan):
    """
    Ensure the deploy's compose layer (``compose.deploy.yml``) and stack.env are the
    plan's: release image tags for the services the app builds, the templated Caddyfile
    mounted where the repository mounts its own, the guide's port rules (only Caddy
    public; the database at most on 127.0.0.1; 3000 and 8000 never published).

    + settings: the host's ``Settings``
    + plan: this run's plan (tasks.plan.Plan): the layer, checked against the port rules
      with what Compose resolves, before the run
    """
    paths = settings.paths
    if plan.layer_text is None:
        yield from later("the deploy's layer is computed once Compose runs on the server")
        return
    for correction in plan.corrections:
        host.log_styled(f"Not published, whatever the app's compose file says: {correction}", fg="yellow",
                        log_func=logger.warning)
    if host.get_fact(Sha256File, path=paths.override) not in (None, sha256(plan.layer_text)):
        # The running release's layer, kept: a swap whose new version never gets ready puts
        # the service back on it (srq-hpn-rollout).
        yield shell("cp", "-p", paths.override, paths.previous_override)
    for src, dest in ((plan.layer_text, paths.override), (plan.stack_env_text, paths.stack_env)):
        yield from files.put._inner(src=StringIO(src), dest=dest, mode="644")
