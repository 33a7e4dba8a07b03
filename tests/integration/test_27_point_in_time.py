"""Scenario 27: point-in-time recovery on the shared server. The deploy turned WAL archiving
on and took a first base backup; the Backups fact and the checklist show the recoverable
window. Rows are written at known times: the drill to a time between two of them passes,
with the rows of that moment, and fails naming the cause when a WAL segment it needs is
missing; the restore to that time (guarded like any restore) leaves exactly the rows
written before it; a time outside the window is refused before anything changes."""

import json
import time

import pytest

from tasks import layout
from tests.integration.helpers import (
    BACKUP_DIR,
    STATE_DIR,
    assert_no_traceback,
    audit_log,
    backups,
    checklist,
    fact,
    lock_is_free,
    psql,
    run_command,
    take_backup,
    wait_until,
)

WAL_DIR = f"{BACKUP_DIR}/{layout.WAL_SUBDIR}"


def system_id(server) -> str:
    return psql(server, "SELECT system_identifier FROM pg_control_system()")


def server_time(server) -> str:
    return server.exec("date -u +%Y-%m-%dT%H:%M:%SZ")[1].strip()


def insert(server, title: str) -> str:
    """One row of the app's table, committed now; returns the WAL segment it went into."""
    psql(server, f"INSERT INTO events (title, starts_at) VALUES ('{title}', now())")
    return psql(server, "SELECT pg_walfile_name(pg_current_wal_lsn())")


def archived_now(server) -> None:
    """Close the current WAL segment and wait until the database has archived it."""
    psql(server, "SELECT txid_current()")  # a commit: the segment is not empty, so the switch closes it
    segment = psql(server, "SELECT pg_walfile_name(pg_current_wal_lsn())")
    psql(server, "SELECT pg_switch_wal()")
    wait_until(lambda: psql(server, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment,
               f"segment {segment} archived", timeout=60, poll=0.5)


def titles(server) -> set[str]:
    return set(psql(server, "SELECT title FROM events WHERE title LIKE 'pitr-%'").split())


@pytest.fixture(scope="module")
def moments(deployed, server):
    """Rows written a second apart around a point in time T, archived: {"t", "rows_at_t",
    "segment"} (segment: the one the row before T went into, closed before the row after T)."""
    take_backup(server)  # a fresh base backup, from which the drill and the restore recover
    time.sleep(1.2)
    segment = insert(server, "pitr-before")
    rows_at_t = int(psql(server, "SELECT count(*) FROM events"))
    archived_now(server)  # the row before T in a segment of its own, archived before the next one
    time.sleep(1.2)
    t = server_time(server)
    time.sleep(1.2)
    insert(server, "pitr-after")
    archived_now(server)
    return {"t": t, "rows_at_t": rows_at_t, "segment": segment}


def test_the_deploy_archives_the_wal_and_shows_the_window(deployed, server, testbed):
    _, mode = server.exec(["docker", "exec", layout.CONTAINERS[layout.DB], "psql", "-X", "-tA", "-U", "srq_hpn",
                           "-d", "srq_hpn", "-c", "SHOW archive_mode"])
    assert mode.strip() == "on"
    cluster = f"{WAL_DIR}/{system_id(server)}"
    _, listing = server.exec(f"ls {cluster}/base/*/manifest.json")
    assert listing.strip(), "the deploy took a first base backup"
    archived_now(server)
    found = fact(server, testbed.settings(), "tasks.facts.Backups")
    (window, *_) = found["point_in_time"]
    assert window["system_identifier"] == system_id(server) and window["recoverable"], window
    assert window["earliest"] <= window["latest"]
    report = checklist(server, testbed.settings())
    assert report.statuses["wal_archive"] == "pass", report.items["wal_archive"]
    assert "recoverable from " in report.evidence("wal_archive")


def test_the_drill_to_a_point_in_time_has_the_rows_of_that_moment(moments, server, testbed):
    run = run_command(server, testbed.settings(), "drill.py", f"drill_time={moments['t']}")
    assert run.returncode == 0, run.describe()
    assert f"Restore drill of the database at {moments['t']}" in run.output and "PASSED" in run.output
    _, text = server.exec(f"cat {STATE_DIR}/drills/last.json")
    record = json.loads(text)
    assert record["result"] == "passed" and record["point_in_time"] == moments["t"], record
    checks = {check["check"]: check for check in record["checks"]}
    assert checks["rows of public.events"]["found"] == str(moments["rows_at_t"]), checks
    assert checks["last transaction replayed"]["ok"] and checks["first transaction not replayed"]["ok"], checks
    assert checks["first transaction not replayed"]["found"] == f"after {moments['t']}"
    # The live database was not touched: both rows are there.
    assert {"pitr-before", "pitr-after"} <= titles(server)


def test_the_drill_fails_naming_a_missing_segment(moments, server, testbed):
    cluster = f"{WAL_DIR}/{system_id(server)}"
    segment = f"{cluster}/wal/{moments['segment']}.gz"
    server.exec(f"mv {segment} {segment}.aside")
    try:
        run = run_command(server, testbed.settings(), "drill.py", f"drill_time={moments['t']}")
    finally:
        server.exec(f"mv {segment}.aside {segment}")
    assert run.returncode != 0, run.describe()
    assert_no_traceback(run)
    assert f"WAL segment {moments['segment']} is missing from the archive" in run.output, run.output
    record = json.loads(server.exec(f"cat {STATE_DIR}/drills/last.json")[1])
    assert record["result"] == "failed" and moments["segment"] in record["cause"], record
    # The segment back in its place, the archive recovers to T again (and the last drill passed).
    again = run_command(server, testbed.settings(), "drill.py", f"drill_time={moments['t']}")
    assert again.returncode == 0, again.describe()


def test_a_time_outside_the_window_is_refused_before_any_change(moments, server, testbed):
    before = (audit_log(server), backups(server))
    run = run_command(server, testbed.settings(), "restore.py", "restore_time=2001-01-01T00:00:00Z",
                      "restore_confirm=srq-hpn.test")
    assert run.returncode != 0, run.describe()
    assert_no_traceback(run)
    assert "is outside the recoverable window" in run.output, run.output
    assert (audit_log(server), backups(server)) == before
    assert lock_is_free(server)


def test_a_restore_to_a_point_in_time_keeps_exactly_the_rows_before_it(moments, server, testbed):
    run = run_command(server, testbed.settings(), "restore.py", f"restore_time={moments['t']}",
                      "restore_confirm=srq-hpn.test")
    assert run.returncode == 0, run.describe()
    assert f"recovered to {moments['t']}" in run.output
    assert titles(server) == {"pitr-before"}
    assert int(psql(server, "SELECT count(*) FROM events")) == moments["rows_at_t"]
    # A backup of that moment (label pitr-...) and a safety backup of what it replaced.
    names = backups(server)
    assert any("-pitr-" in name for name in names) and any(name.endswith("-before-restore") for name in names)
    (line,) = [entry for entry in audit_log(server)[-1:]]
    assert line["action"] == "restore" and line.get("point_in_time") == moments["t"], line
    assert lock_is_free(server)
    # The archive goes on after the restore: the live cluster is the same one.
    wait_until(lambda: checklist(server, testbed.settings()).statuses["wal_archive"] == "pass",
               "the WAL archive's item passes after the restore", timeout=60, poll=5)
