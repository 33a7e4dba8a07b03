"""Step 4 of the guide ("Set Environment Variables") and the deploy's own layer:
.env.production (0600), the templated Caddyfile, and compose.deploy.yml, all read
by the guide's own `docker compose --env-file .env.production` commands; and the
record of when each password was set (for the checklist's password age)."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from tasks import render
from tasks.operations.checklist import passwords_recorded
from tasks.operations.config import compose_layer, env_file
from tasks.operations.files import file_in_place
from tasks.release import ReleaseRef
from tasks.secrets import EnvSources
from tasks.settings import Settings


@deploy("Write the stack's configuration")
def install(settings: Settings, sources: EnvSources, release: ReleaseRef):
    """Returns a function telling (once the deploy ran) whether the Caddyfile changed."""
    paths = settings.paths
    env_file(
        name=f"Ensure {paths.env_file} holds every variable the app asks for (0600, root)",
        paths=paths,
        sources=sources,
        announce=settings.app_source == "git",
    )
    passwords_recorded(
        name="Ensure the server records when each password was set (names and times only)",
        paths=paths,
        changed=sources.changed_passwords(),
    )
    changed = lambda: False  # noqa: E731
    if settings.caddyfile == "template":
        files.directory(name=f"Ensure {paths.caddy_dir} exists", path=paths.caddy_dir, mode="755")
        caddyfile = file_in_place(
            name=f"Ensure {paths.caddyfile} routes /api/* to api and the rest to web",
            path=paths.caddyfile,
            content=render.caddyfile(settings),
        )
        changed = caddyfile.did_change
    compose_layer(
        name="Ensure the deploy's compose layer fits the app's compose file (ports, Caddyfile, release images)",
        settings=settings,
        release=release,
    )
    return changed


@deploy("Point the stack at the release")
def layer(settings: Settings, release: ReleaseRef):
    """The deploy's compose layer alone (a rollback changes nothing else)."""
    compose_layer(
        name="Ensure the deploy's compose layer names the release's images",
        settings=settings,
        release=release,
    )
