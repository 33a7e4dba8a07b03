"""Step 7: build the app's images and migrate the database with the superuser,
before the api serves traffic."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks import render
from tasks.operations import images_built, migrated
from tasks.settings import Settings


def build_digest(settings: Settings) -> str:
    """What, besides the source, decides the images' content: build contexts and base images."""
    inputs = (settings.api_path, settings.web_path, settings.api_base_image, settings.web_base_image)
    return render.sha256("\n".join(inputs))[:16]


@deploy("Build the app and migrate the database")
def build_and_migrate(settings: Settings, source_revision: str | None):
    images_built(
        name="Ensure the api and web images are built from the current source",
        app_dir=settings.app_dir,
        services=["api", "web"],
        build_digest=build_digest(settings),
        source_revision=source_revision,
    )
    migrated(
        name="Ensure the database schema is at the newest migration (alembic upgrade head)",
        app_dir=settings.app_dir,
    )
