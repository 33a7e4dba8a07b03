"""Scenario 26, on a server of its own: every migration is rehearsed on a copy of
production before it runs there.

1. A migration that passes (0003: a nullable column `note` on events): `--dry` names the
   rehearsal as part of the migration; the deploy says how long it took on the copy (the
   pre-migration backup, restored into a scratch database), then migrates production; the
   checklist's line reads the record the rehearsal left.
2. A migration that fails only on production's data (0004: an index built concurrently,
   outside any transaction, then NOT NULL over `note`, which the existing rows hold null):
   the rehearsal stops it. Production's schema is exactly as before (without the rehearsal,
   the index would be left behind), alembic_version unchanged, no container recreated, the
   old version serving; alembic's own words and the rows of the copy's tables are shown, no
   traceback, and the run's last line is the deploy's own. The checklist says so.
3. Turned off, the plan says the migration is not rehearsed, and the checklist warns.
4. Interrupted (srq-hpn-migrate stopped with SIGTERM, its process id read from the record,
   while a slow migration runs on the copy): the record says where it was interrupted, not
   the result before it; production is untouched and the checklist does not pass.
5. Stopped with SIGTERM while alembic runs on production (not rehearsed): alembic is not cut
   short; once it has ended, the record says where production's database is (at the
   release's revision: migrated, saying it was stopped after).
No scratch container or network is left behind."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tasks import layout
from tests.integration.helpers import (
    ADD_NOTE_MIGRATION,
    app_copy,
    assert_no_traceback,
    backups,
    checklist,
    deploy,
    failed_deploy,
    manifest,
    planned,
    psql,
    start_times,
    wait_until,
)
from tests.testbed import harness

RECORD = layout.Paths().migration_record
# Fails only where rows hold no note (production's data), after a step no transaction undoes.
REQUIRE_NOTE = '''"""an index on titles, and a note required

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_events_title", "events", ["title"], postgresql_concurrently=True)
    op.alter_column("events", "note", existing_type=sa.Text(), nullable=False)


def downgrade():
    op.alter_column("events", "note", existing_type=sa.Text(), nullable=True)
    op.drop_index("ix_events_title", table_name="events")
'''


# Slow on purpose: long enough to be interrupted while it runs on the copy.
SLOW = '''"""a slow one

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SELECT pg_sleep(SECONDS)")


def downgrade():
    pass
'''


@pytest.fixture(scope="module")
def rehearsing(testbed, tmp_path_factory):
    """A server of this scenario's own, deployed with the sample app (at 0002), with rows;
    and the app's next two releases: 0003 (passes) and 0004 (fails on those rows)."""
    server = testbed.start_server("rehearsal")
    try:
        deploy(server, testbed.settings())
        for n in range(5):
            psql(server, f"INSERT INTO events (title, starts_at) VALUES ('event {n}', now())")
        apps = tmp_path_factory.mktemp("apps")
        v3 = app_copy(harness.SAMPLE_APP, apps / "v3")
        (v3 / "apps/api/alembic/versions/0003_add_note.py").write_text(ADD_NOTE_MIGRATION)
        v4 = app_copy(v3, apps / "v4")
        (v4 / "apps/api/alembic/versions/0004_require_note.py").write_text(REQUIRE_NOTE)
        ca = harness.caddy_root_ca(server, apps / "ca.crt")
        yield server, ca, testbed.settings(srq_hpn_app_local_path=str(v3)), \
            testbed.settings(srq_hpn_app_local_path=str(v4))
    finally:
        server.remove()


def revision(server) -> str:
    return psql(server, "SELECT version_num FROM alembic_version")


def schema(server) -> str:
    """A schema-only dump of production (without the dump's random per-run key lines)."""
    _, out = server.exec(["docker", "exec", layout.CONTAINERS[layout.DB], "pg_dump", "-U", "srq_hpn",
                          "--schema-only", "srq_hpn"])
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def record(server) -> dict:
    _, text = server.exec(f"cat {RECORD}")
    return json.loads(text)


def leftovers(server) -> str:
    _, containers = server.exec(f"docker ps -aq --filter label={layout.REHEARSAL_LABEL}")
    _, networks = server.exec(f"docker network ls -q --filter label={layout.REHEARSAL_LABEL}")
    return (containers + networks).strip()


def test_a_migration_that_passes_is_rehearsed_then_deployed(rehearsing):
    server, _, v3, _ = rehearsing
    first = record(server)  # the first deploy migrated an empty database: nothing to rehearse on
    assert first["result"] == "migrated" and first["rehearsal"]["result"] == "not-needed", first
    assert first["to"] == "0002" and "empty database" in first["rehearsal"]["why"]

    changes, lines = planned(server, v3)
    wanted = "migrate 0002 -> 0003, rehearsed on a copy first, after a backup pre-migration-0002-to-0003"
    assert wanted in lines, lines
    assert any(wanted in name and "newest migration" in name for name in changes), changes
    assert revision(server) == "0002"  # --dry changed nothing

    run = deploy(server, v3)

    output = run.output
    rehearsed = re.search(r"Rehearsal passed: the migration 0002 -> 0003 took ([0-9.]+)s on the copy of "
                          r"production \((\d+) rows\); migrating production now", output)
    assert rehearsed, output[-4000:]
    migrated = output.index("Migrated production 0002 -> 0003 in ")
    assert output.index("Rehearsing the migration 0002 -> 0003 on a copy of production") < rehearsed.start() < migrated
    assert revision(server) == "0003"
    (backup,) = [name for name in backups(server) if name.endswith("-pre-migration-0002-to-0003")]
    assert f"backup {backup} (" in output  # the copy is the backup taken before the migration
    assert int(rehearsed.group(2)) == sum(manifest(server, backup)["tables"].values())
    last = record(server)
    assert last["result"] == "migrated" and last["from"] == "0002" and last["to"] == "0003", last
    assert last["rehearsal"] == {"result": "passed", "why": None, "backup": backup,
                                 "duration_s": float(rehearsed.group(1))}
    assert leftovers(server) == ""

    items = checklist(server, v3)
    assert items.statuses["migrations"] == "pass", items.items["migrations"]
    assert ("the last migration deployed, 0002 -> 0003, " in items.evidence("migrations")
            and f"was rehearsed first on a copy of production (backup {backup})" in items.evidence("migrations"))


def test_a_migration_that_fails_on_productions_data_is_stopped_by_its_rehearsal(rehearsing):
    server, ca, _, v4 = rehearsing
    assert psql(server, "SELECT count(*) FROM events WHERE note IS NULL") == "5"
    schema_before, serving = schema(server), start_times(server)
    _, api_image = server.exec("docker inspect --format '{{.Image}}' srq-hpn-api")

    run = failed_deploy(server, v4)

    output = run.output
    assert "Rehearsing the migration 0003 -> 0004 on a copy of production" in output
    assert 'column "note" of relation "events" contains null values' in output, output[-4000:]  # alembic's words
    assert "Traceback (most recent call last)" not in output
    assert_no_traceback(run)
    assert "Rows of every table of the copy, after the failure (which tables the migration touched cannot be told" \
        in output
    assert re.search(r"\|\s+public\.events\s+5\b", output), output[-4000:]
    assert "hint: the lines above are alembic's; nothing was restarted and the running version keeps serving" in output
    assert "Migrated production" not in output
    last_line = run.stderr.strip().splitlines()[-1]
    assert "Stopped on 127.0.0.1" in last_line and "production is untouched" in last_line, last_line
    assert "No hosts remaining" not in output

    # Production is untouched: its schema (no index left half-built), its revision, its containers.
    assert schema(server) == schema_before
    assert "ix_events_title" not in schema(server)
    assert revision(server) == "0003"
    assert start_times(server) == serving
    assert server.exec("docker inspect --format '{{.Image}}' srq-hpn-api")[1] == api_image
    assert harness.https_get(server, "/api/health", ca).text == '{"ok":true,"service":"api"}'
    last = record(server)
    assert last["result"] == "stopped" and last["from"] == "0003" and last["to"] == "0004", last
    assert last["rehearsal"]["result"] == "failed" and last["rehearsal"]["backup"].endswith("-pre-migration-0003-to-0004")
    assert leftovers(server) == ""

    items = checklist(server, v4)
    assert items.statuses["migrations"] == "warn", items.items["migrations"]
    assert "the last migration tried, 0003 -> 0004, " in items.evidence("migrations")
    assert "did not pass its rehearsal on a copy of production and was not deployed" in items.evidence("migrations")


def test_turned_off_the_plan_and_the_checklist_say_so(rehearsing):
    server, _, v3, v4 = rehearsing
    _, lines = planned(server, {**v4, "srq_hpn_migration_rehearsal": False})
    assert "migrate 0003 -> 0004, after a backup pre-migration-0003-to-0004, not rehearsed " \
           "(srq_hpn_migration_rehearsal is off)" in lines, lines

    deploy(server, {**v3, "srq_hpn_migration_rehearsal": False})  # no migration: only the setting changes

    items = checklist(server, {**v3, "srq_hpn_migration_rehearsal": False})
    assert items.statuses["migrations"] == "warn", items.items["migrations"]
    assert items.evidence("migrations").startswith("migration rehearsal is off (srq_hpn_migration_rehearsal = False)")


def test_interrupted_during_its_rehearsal_the_record_says_so(rehearsing, tmp_path):
    server, _, v3, _ = rehearsing
    slow = app_copy(Path(v3["srq_hpn_app_local_path"]), tmp_path / "slow")
    (slow / "apps/api/alembic/versions/0004_slow.py").write_text(SLOW.replace("SECONDS", "120"))
    before = record(server)
    serving = start_times(server)

    def migrating_the_copy() -> bool:
        _, ids = server.exec(f"docker ps -q --filter label={layout.REHEARSAL_LABEL}")
        return len(ids.split()) == 2 and record(server)["result"] == "in-progress"  # the scratch db, alembic's

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(harness.run_pyinfra, server.inventory(**{**v3, "srq_hpn_app_local_path": str(slow)}),
                              "deploy.py", "-y")
        wait_until(migrating_the_copy, "the slow migration running on the copy", timeout=240)
        progress = record(server)
        assert progress["phase"] == "rehearsal" and (progress["from"], progress["to"]) == ("0003", "0004"), progress
        server.exec(f"kill -TERM {progress['pid']}")
        run = running.result(timeout=300)

    assert run.returncode != 0
    assert "migration 0003 -> 0004 interrupted (stopped by SIGTERM) during its rehearsal: production's database " \
           "was not touched" in run.output, run.output[-4000:]
    last = record(server)
    assert last != before and last["result"] == "interrupted" and last["phase"] == "rehearsal", last
    assert "stopped by SIGTERM during the rehearsal on a copy of production" in last["cause"]
    assert revision(server) == "0003" and start_times(server) == serving
    assert leftovers(server) == ""

    items = checklist(server, v3)
    assert items.statuses["migrations"] == "warn", items.items["migrations"]
    assert "the last migration tried, 0003 -> 0004, " in items.evidence("migrations")
    assert "was interrupted: srq-hpn-migrate was stopped by SIGTERM" in items.evidence("migrations")


def test_stopped_while_production_migrates_alembic_ends_and_the_record_says_where_production_is(rehearsing, tmp_path):
    server, _, v3, _ = rehearsing
    slow = app_copy(Path(v3["srq_hpn_app_local_path"]), tmp_path / "slow")
    (slow / "apps/api/alembic/versions/0004_slow.py").write_text(SLOW.replace("SECONDS", "10"))
    settings = {**v3, "srq_hpn_app_local_path": str(slow), "srq_hpn_migration_rehearsal": False}

    def migrating_production() -> bool:
        _, ids = server.exec("docker ps -q --filter label=com.docker.compose.oneoff=True "
                             "--filter label=com.docker.compose.service=api")
        now = record(server)
        return bool(ids.split()) and now["result"] == "in-progress" and now["phase"] == "production"

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(harness.run_pyinfra, server.inventory(**settings), "deploy.py", "-y")
        wait_until(migrating_production, "the slow migration running on production", timeout=240, poll=0.2)
        server.exec(f"kill -TERM {record(server)['pid']}")
        run = running.result(timeout=300)

    assert run.returncode != 0
    assert "migration 0003 -> 0004: stopped by SIGTERM, after production was migrated (its database is at 0004)" \
        in run.output, run.output[-4000:]
    last = record(server)
    assert last["result"] == "migrated" and (last["from"], last["to"]) == ("0003", "0004"), last
    assert last["cause"] == ("srq-hpn-migrate was stopped by SIGTERM after alembic upgrade head ended on production, "
                             "which is at 0004")
    assert revision(server) == "0004"
    _, history = server.exec(f"tail -n 1 {RECORD.rsplit('/', 1)[0]}/history.jsonl")
    assert json.loads(history) == last
