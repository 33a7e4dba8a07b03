"""Step 6: the database first: start db alone, wait for its healthcheck, then make
sure the limited app role exists with its grants (also on a pre-existing volume)."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks.facts import CONTAINERS
from tasks.operations import app_role, container_healthy, services_up
from tasks.settings import Settings


@deploy("Start the database first")
def start(settings: Settings):
    services_up(
        name="Ensure the db container runs its current configuration",
        app_dir=settings.app_dir,
        services=["db"],
    )
    container_healthy(
        name="Ensure the db healthcheck reports healthy",
        container=CONTAINERS["db"],
        service="db",
        timeout=settings.postgres_healthy_timeout,
    )
    app_role(
        name=f"Ensure the limited role {settings.postgres_app_user} exists with row privileges only",
        container=CONTAINERS["db"],
    )
