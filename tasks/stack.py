"""Step 8: start everything and verify it through Caddy, on the server itself."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import server

from tasks.facts import CONTAINERS, compose
from tasks.operations import container_healthy, services_up, stack_answers
from tasks.settings import Settings

SERVICES = ["db", "api", "web", "caddy"]


@deploy("Start the stack and verify it")
def start_and_verify(settings: Settings, caddyfile_changed: bool):
    services_up(
        name="Ensure caddy, web, api and db run their current configuration and images",
        app_dir=settings.app_dir,
        services=SERVICES,
    )
    if caddyfile_changed:
        server.shell(
            name="Reload Caddy's configuration (the Caddyfile changed)",
            commands=[compose(settings.app_dir, "exec", "-T", "caddy", "caddy", "reload",
                              "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile")],
        )
    container_healthy(
        name="Ensure the api healthcheck reports healthy",
        container=CONTAINERS["api"],
        service="api",
        timeout=settings.postgres_healthy_timeout,
    )
    if settings.verify:
        stack_answers(
            name=f"Ensure https://{settings.domain}/ and /api/* answer through Caddy",
            domain=settings.domain,
            tls_internal=settings.caddy_tls == "internal",
            timeout=settings.verify_timeout,
        )
