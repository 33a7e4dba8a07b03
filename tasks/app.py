"""The release's images (built and pulled in the background while the database starts,
with the backup taken before a migration meanwhile), then `alembic upgrade head` with the
superuser in a one-off container, before api and web are replaced (if the backup failed,
nothing is migrated)."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks.operations.database import migrated
from tasks.operations.release import images_built, images_started
from tasks.plan import Plan
from tasks.settings import Settings


@deploy("Prepare the release's images")
def prepare_images(plan: Plan):
    """Start building the release's images (and pulling the missing ones) while the database starts."""
    images_started(name=f"Ensure the release's images are on their way ({images_words(plan)})", plan=plan)


@deploy("Build the app and migrate the database")
def build_and_migrate(settings: Settings, plan: Plan):
    images_built(name=f"Ensure the release's images are built ({images_words(plan)})", plan=plan)
    migrated(
        name="Ensure the database schema is at the release's newest migration"
             + (f" ({plan.migration.words()})" if plan.migrates else "")
             + (" (once, on the first app server, before any server is swapped)" if settings.behind_edge else ""),
        paths=settings.paths,
        plan=plan,
    )


def images_words(plan: Plan) -> str:
    parts = [f"build {', '.join(plan.build)}" if plan.build else "", f"pull {', '.join(plan.pull)}" if plan.pull else "",
             f"back up first: {plan.migration.label}" if plan.migrates and plan.migration.has_data else ""]
    return "; ".join(part for part in parts if part) or f"release {plan.release.id or '(fetched)'}: all there"
