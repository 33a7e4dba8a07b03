"""Scenario 22, on a server of its own: a backup before every migration. The first
deploy (an empty database) says no backup is needed. An update that adds a migration
leaves a backup named after the revisions, holding the rows as they were before. With
that backup made to fail (a full backup directory), the next migration is not run,
nothing is restarted and the running version keeps serving. Once there is room again,
the deploy goes through; and a restore of the pre-migration backup, which is behind
the code, is migrated to the release's head."""

import json
from pathlib import Path

from tasks import layout
from tasks.sourcetree import Upload
from tests.integration.helpers import (
    BACKUP_DIR,
    app_copy,
    backups,
    deploy,
    failed_deploy,
    manifest,
    psql,
    run_command,
    start_times,
)
from tests.testbed import harness

WAL_DIR = f"{BACKUP_DIR}/{layout.WAL_SUBDIR}"

MIGRATION = '''"""create table {table}

Revision ID: {revision}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("{table}", sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True))


def downgrade() -> None:
    op.drop_table("{table}")
'''


def with_migration(source: Path, destination: Path, revision: str, down: str, table: str) -> Path:
    app = app_copy(source, destination)
    (app / f"apps/api/alembic/versions/{revision}_create_{table}.py").write_text(
        MIGRATION.format(revision=revision, down=down, table=table))
    return app


def revision(server) -> str:
    return psql(server, "SELECT version_num FROM alembic_version")


def test_every_migration_waits_for_its_backup(fresh_server, testbed, tmp_path):
    server = fresh_server("migrations")
    settings = testbed.settings()
    first = deploy(server, settings)
    assert "Migrating an empty database (nothing to back up first)" in first.output
    assert backups(server) == []
    ca = harness.caddy_root_ca(server, tmp_path / "ca.crt")
    for n in range(4):
        harness.https_get(server, "/api/events", ca, method="POST", headers={"Content-Type": "application/json"},
                          body=f'{{"title": "before 0003 #{n}", "starts_at": "2026-07-01T09:00:00Z"}}'.encode())

    # An update with a migration: the backup first, named after the revisions.
    v3 = with_migration(harness.SAMPLE_APP, tmp_path / "v3", "0003", "0002", "venues")
    run = deploy(server, {**settings, "srq_hpn_app_local_path": str(v3)})
    assert "Backing up the database before migrating 0002 -> 0003 (pre-migration-0002-to-0003)" in run.output
    (pre_migration,) = backups(server)
    assert pre_migration.endswith("-pre-migration-0002-to-0003")
    held = manifest(server, pre_migration)
    assert held["alembic_revision"] == ["0002"] and "public.venues" not in held["tables"]
    assert held["tables"]["public.events"] == 4
    assert revision(server) == "0003"

    # The next migration, with no room for its backup: nothing migrates, nothing restarts.
    v4 = with_migration(v3, tmp_path / "v4", "0004", "0003", "rooms")
    serving = start_times(server)
    # A full file system over the backup directory; the WAL archive in it stays where the
    # database writes it (mounted back over the full one), as a full disk would not hide it.
    server.exec(f"mkdir -p /run/wal-keep && mount --bind {WAL_DIR} /run/wal-keep && "
                f"mount -t tmpfs -o size=16k,mode=0700 full-disk {BACKUP_DIR} && "
                f"mkdir {WAL_DIR} && mount --bind /run/wal-keep {WAL_DIR} && "
                f"{{ dd if=/dev/zero of={BACKUP_DIR}/filler bs=1k count=16 2>/dev/null || true; }}")
    try:
        failed = failed_deploy(server, {**settings, "srq_hpn_app_local_path": str(v4)})
    finally:
        server.exec(f"umount {WAL_DIR}; umount {BACKUP_DIR}; umount /run/wal-keep")
    assert "Backing up the database before migrating 0003 -> 0004" in failed.output
    assert "no space left on device" in failed.output
    assert "the backup before migrating failed (its words above): nothing was migrated and nothing restarted" \
        in failed.output
    assert revision(server) == "0003"
    assert start_times(server) == serving
    _, image = server.exec("docker inspect --format '{{.Config.Image}}' srq-hpn-api")
    _, record = server.exec(f"cat /var/lib/srq-hpn/releases/{Upload.of(v3).revision}.json")
    assert image.strip() == json.loads(record)["images"]["api"]  # v3's: v4's never replaced it
    assert harness.https_get(server, "/api/health", ca).text == '{"ok":true,"service":"api"}'
    assert backups(server) == [pre_migration]

    # With room again, the same update goes through, with its backup.
    deploy(server, {**settings, "srq_hpn_app_local_path": str(v4)})
    assert revision(server) == "0004"
    assert backups(server)[-1].endswith("-pre-migration-0003-to-0004")

    # Restoring the backup taken at 0002 brings its rows back and migrates them to the release's head.
    restored = run_command(server, {**settings, "srq_hpn_app_local_path": str(v4)}, "restore.py",
                           f"restore_backup={pre_migration}", "restore_confirm=srq_hpn")
    assert restored.returncode == 0, restored.describe()
    assert "Migrating 0002 -> 0004" in restored.output
    assert revision(server) == "0004"
    assert psql(server, "SELECT count(*) FROM events") == "4"
    assert psql(server, "SELECT count(*) FROM rooms") == "0"
    assert harness.https_get(server, "/api/db-health", ca).status == 200
