"""Step 6 of the guide ("Set Environment Variables") and the deploy's own layer:
.env.production (0600), the templated Caddyfile, and compose.deploy.yml, all read by the
guide's own `docker compose --env-file .env.production` commands, as the plan resolved
them; and the record of when each password was set (for the checklist's password age)."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from tasks import layout, render
from tasks.operations.checklist import passwords_recorded
from tasks.operations.config import compose_layer, env_file
from tasks.operations.files import file_in_place
from tasks.plan import Plan
from tasks.secrets import EnvSources
from tasks.settings import Settings


@deploy("Write the stack's configuration")
def install(settings: Settings, plan: Plan, sources: EnvSources):
    paths = settings.paths
    env_file(
        name=f"Ensure {paths.env_file} holds every variable the app asks for (0600, root)",
        paths=paths,
        plan=plan,
    )
    passwords_recorded(
        name="Ensure the server records when each password was set (names and times only)",
        paths=paths,
        changed=sources.changed_passwords(),
    )
    if settings.caddyfile == "template":
        files.directory(name=f"Ensure {paths.caddy_dir} exists", path=paths.caddy_dir, mode="755")
        acme_ca_root(settings)
        file_in_place(
            name=f"Ensure {paths.caddyfile} routes /api/* to api and the rest to web",
            path=paths.caddyfile,
            content=render.caddyfile(settings),
        )
    db_ca(settings)
    layer(settings, plan)


def db_ca(settings: Settings):
    """The external database's CA certificate, mounted into the services that connect to it
    and into the deploy's clients (postgres_ssl_ca)."""
    if settings.external_db and settings.postgres_ssl_ca:
        file_in_place(name=f"Ensure {layout.DB_CA_FILE} holds the database's CA certificate ({settings.postgres_ssl_ca})",
                      path=layout.DB_CA_FILE, content=settings.db_ca_pem())
    else:
        files.file(name=f"Ensure no external database's CA is left in {layout.DB_CA_FILE}", path=layout.DB_CA_FILE,
                   present=False)


def acme_ca_root(settings: Settings):
    """A private ACME server's root certificate(s), which Caddy and the checks trust (caddy_acme_ca_root)."""
    path = settings.paths.acme_ca_root
    if settings.caddy_acme_ca_root:
        file_in_place(name=f"Ensure {path} holds the ACME server's root certificate(s) ({settings.caddy_acme_ca_root})",
                      path=path, content=settings.acme_ca_root_pem())
    else:
        files.file(name=f"Ensure no private ACME server's root is left in {path}", path=path, present=False)


def layer(settings: Settings, plan: Plan):
    """The deploy's compose layer (a rollback writes nothing else)."""
    compose_layer(
        name=f"Ensure the deploy's compose layer names release {plan.release.id or '(fetched)'}'s images and the "
             "guide's port rules" + (" and logs to the journal" if settings.log_shipping_url else ""),
        settings=settings,
        plan=plan,
    )
