"""Step 9: the release's images, then `alembic upgrade head` with the superuser in a
one-off container, before api and web are replaced; when a migration is pending, a
backup named after the revisions first (if it fails, nothing is migrated)."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks import release
from tasks.operations.backups import before_migrating
from tasks.operations.database import migrated
from tasks.settings import Settings


def prepare_images(settings: Settings):
    """Start building the release's images (and pulling the missing ones) while the database starts."""
    release.prepare_images(settings)


@deploy("Build the app and migrate the database")
def build_and_migrate(settings: Settings):
    release.build(settings)
    migrated(
        name="Ensure the database schema is at the release's newest migration (alembic upgrade head)",
        paths=settings.paths,
        user=settings.postgres_user,
        database=settings.postgres_db,
        before_migrating=before_migrating,
    )
