"""Step 4: the files the stack runs from: env file, Caddyfile, compose.yml, db init script."""

from __future__ import annotations

from io import StringIO

from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import files

from tasks import render
from tasks.facts import ENV_FILE
from tasks.operations import private_file
from tasks.render import Passwords
from tasks.settings import Settings


@deploy("Write the stack's files")
def install(settings: Settings, passwords: Passwords) -> bool:
    """Returns whether the Caddyfile changes (Caddy then reloads it)."""
    app_dir = settings.app_dir
    files.directory(name=f"Ensure {app_dir} exists (root only)", path=app_dir, mode="750")
    for sub in ("caddy", "db", "db/init", ".state"):
        files.directory(name=f"Ensure {app_dir}/{sub} exists", path=f"{app_dir}/{sub}", mode="755")

    private_file(
        name=f"Ensure {app_dir}/{ENV_FILE} holds the settings and secrets (0600, root)",
        path=f"{app_dir}/{ENV_FILE}",
        content=HiddenValue(render.env_file(settings, passwords)),
        preview=render.masked_env_file(settings),
    )
    caddyfile = files.put(
        name=f"Ensure {app_dir}/caddy/Caddyfile routes /api/* to api and the rest to web",
        src=StringIO(render.caddyfile(settings)),
        dest=f"{app_dir}/caddy/Caddyfile",
        mode="644",
    )
    files.put(
        name=f"Ensure {app_dir}/compose.yml defines caddy, web, api and db",
        src=StringIO(render.compose_file(settings)),
        dest=f"{app_dir}/compose.yml",
        mode="644",
    )
    files.put(
        name=f"Ensure {app_dir}/db/init/01-create-app-user.sh creates the limited app role",
        src=StringIO(render.init_script()),
        dest=f"{app_dir}/db/init/01-create-app-user.sh",
        mode="755",
    )
    return bool(caddyfile.will_change)
