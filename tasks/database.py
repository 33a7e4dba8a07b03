"""Step 9: the database first: on the volume that holds the data, started alone, ready
before anything else, with the limited app role and its grants (also on a volume
that existed before, and whether or not the repository ships a db/init script), and its
WAL archive ready for point-in-time recovery. With an external database (postgres_host):
it answers, and has the app role."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks.operations.backups import wal_archive_ready
from tasks.operations.database import app_role, data_volume_kept, db_ready
from tasks.plan import Plan
from tasks.settings import Settings


@deploy("Start the database first")
def start(settings: Settings, plan: Plan):
    """The app's db service (or, with postgres_host, the external database: not started here,
    it must accept connections from this server, and the app role is made sure with its admin)."""
    external = f"{settings.postgres_host}:{settings.postgres_port}" if settings.external_db else ""
    if not external:
        data_volume_kept(
            name="Ensure the database starts on the volume that holds this stack's data",
            paths=settings.paths,
            plan=plan,
        )
    db_ready(
        name=f"Ensure the external database {external} accepts connections from this server "
             f"(sslmode {settings.postgres_sslmode})" if external else
             "Ensure db runs its current configuration and accepts connections"
             + (f" (start it: {plan.db_start})" if plan.db_start else ""),
        paths=settings.paths,
        plan=plan,
        timeout=settings.postgres_healthy_timeout,
    )
    app_role(
        name=f"Ensure the limited role {settings.postgres_app_user} exists"
             + (f" on {external}" if external else "") + " with row privileges only"
             + (f" ({'; '.join(plan.app_role)})" if plan.app_role else ""),
        plan=plan,
    )
    if settings.backup_wal_archive:
        wal_archive_ready(
            name=f"Ensure the database archives its WAL to {settings.wal_dir} and has a base backup"
                 + (f" ({'; '.join(plan.wal.values())})" if plan.wal else ""),
            plan=plan,
        )
