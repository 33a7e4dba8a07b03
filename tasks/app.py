"""Steps 7 and 10: the release's images (built and pulled in the background while the
database starts), then `alembic upgrade head` with the superuser in a one-off container,
before api and web are replaced; when the database holds data, a backup named after the
revisions first (if it fails, nothing is migrated)."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks.operations.backups import before_migrating
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
             + (f" ({plan.migration.words()})" if plan.migrates else ""),
        paths=settings.paths,
        plan=plan,
        before_migrating=before_migrating,
    )


def images_words(plan: Plan) -> str:
    if not plan.build and not plan.pull:
        return f"release {plan.release.id or '(fetched)'}: all there"
    return "; ".join(part for part in (f"build {', '.join(plan.build)}" if plan.build else "",
                                      f"pull {', '.join(plan.pull)}" if plan.pull else "") if part)
