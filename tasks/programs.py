"""The deploy's programs on the server (waits, swaps, the source and app-role helpers),
and what they need to know, in /etc/srq-hpn/deploy.env (no secret)."""

from __future__ import annotations

from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import files

from tasks import layout, render
from tasks.settings import Settings


@deploy("Install the deploy's server programs")
def install(settings: Settings):
    files.directory(name=f"Ensure {layout.LIB_DIR} exists", path=layout.LIB_DIR, mode="755")
    for name, text in render.server_programs().items():
        files.put(
            name=f"Ensure {layout.LIB_DIR}/{name} is current",
            src=StringIO(text),
            dest=f"{layout.LIB_DIR}/{name}",
            mode="755" if name.startswith("srq-hpn-") else "644",
        )
    files.directory(name=f"Ensure {layout.CONFIG_DIR} exists", path=layout.CONFIG_DIR, mode="755")
    files.put(
        name=f"Ensure {layout.DEPLOY_ENV} tells them where the stack lives and what the checks expect",
        src=StringIO(render.deploy_env(settings)),
        dest=layout.DEPLOY_ENV,
        mode="644",
    )
    files.directory(name=f"Ensure {settings.paths.state_dir} exists (root only)", path=settings.paths.state_dir,
                    mode="700")
