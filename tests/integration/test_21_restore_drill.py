"""Scenario 21: the restore drill, one command. On a good backup it passes, printing its
table and recording its result, without touching the live database or leaving its
scratch container; on a truncated backup, and on one whose rows differ from its
manifest, it fails naming the cause."""

import json

import pytest

from tasks import layout
from tests.integration.helpers import (
    BACKUP_DIR,
    assert_no_traceback,
    backups,
    fact,
    manifest,
    psql,
    run_command,
    start_times,
    take_backup,
)

DRILL_RECORD = layout.Paths().drill_record


def last_drill(server) -> dict:
    _, text = server.exec(f"cat {DRILL_RECORD}")
    return json.loads(text)


def scratch_containers(server) -> str:
    return server.exec("docker ps -aq --filter label=org.srq-hpn.drill")[1].strip()


@pytest.fixture
def damaged(server):
    """A copy of the newest backup, to damage; removed afterwards, and the drill record
    put back as it was (the shared server keeps only its real backups, and the checklist
    scenarios after this one see the last real drill, not this staged failure). Its name
    is older than every real one: never the newest."""
    made = []
    server.exec(f"cp -a {DRILL_RECORD} {DRILL_RECORD}.kept 2>/dev/null || true")

    def copy(label: str) -> str:
        source = take_backup(server) if not backups(server) else backups(server)[-1]
        name = f"srq-hpn-20000101T000000Z-{label}"
        server.exec(f"cp -a {BACKUP_DIR}/{source} {BACKUP_DIR}/{name}")
        made.append(name)
        return name

    yield copy
    for name in made:
        server.exec(f"rm -rf {BACKUP_DIR}/{name}")
    server.exec(f"if [ -e {DRILL_RECORD}.kept ]; then mv {DRILL_RECORD}.kept {DRILL_RECORD}; else rm -f {DRILL_RECORD}; fi")


def test_the_drill_passes_on_a_good_backup(deployed, server, testbed):
    name = take_backup(server)
    rows = manifest(server, name)["tables"]["public.events"]
    live_db = start_times(server)["srq-hpn-db"]

    run = run_command(server, testbed.settings(), "drill.py")

    assert run.returncode == 0, run.describe()
    assert f"Restore drill of {name} (this server's backup): PASSED" in run.output
    lines = run.output.splitlines()
    assert any("rows of public.events" in line and line.split()[-3:] == [str(rows), str(rows), "ok"]
               for line in lines), run.output[-3000:]
    assert any("alembic revision" in line and line.split()[-3:] == ["0002", "0002", "ok"] for line in lines)
    assert any("app role srq_hpn_app" in line and line.endswith("ok") for line in lines)
    record = last_drill(server)
    assert record["backup"] == name and record["result"] == "passed" and record["from"] == "local"
    assert record["duration_s"] > 0 and all(check["ok"] for check in record["checks"])
    assert {"files (size, sha256)", "pg_restore --list", "alembic revision", "rows of public.events",
            "app role srq_hpn_app"} <= {check["check"] for check in record["checks"]}
    # The live database was not touched, and the scratch container is gone.
    assert start_times(server)["srq-hpn-db"] == live_db
    assert int(psql(server, "SELECT count(*) FROM events")) >= rows
    assert scratch_containers(server) == ""

    last = fact(server, testbed.settings(), "tasks.facts.LastDrill")
    assert last["result"] == "passed" and last["age_hours"] < 1


def test_the_drill_fails_on_a_truncated_backup(deployed, server, testbed, damaged):
    name = damaged("truncated")
    server.exec(f"truncate -s 2000 {BACKUP_DIR}/{name}/db.dump")

    run = run_command(server, testbed.settings(), "drill.py", f"drill_backup={name}")

    assert run.returncode != 0, run.describe()
    assert_no_traceback(run)
    assert f"Restore drill of {name} (this server's backup): FAILED" in run.output
    expected = manifest(server, name)["files"]["db.dump"]["bytes"]
    cause = f"db.dump is truncated: 2000 bytes, the manifest says {expected}"
    assert f"the restore drill of {name} FAILED: {cause}" in run.output
    record = last_drill(server)
    assert record["result"] == "failed" and record["cause"] == cause
    assert scratch_containers(server) == ""


def test_the_drill_fails_when_rows_differ_from_the_manifest(deployed, server, testbed, damaged):
    name = damaged("miscounted")
    rows = manifest(server, name)["tables"]["public.events"]
    server.exec(f"cd {BACKUP_DIR}/{name} && jq '.tables[\"public.events\"] += 1' manifest.json > m && mv m manifest.json")

    run = run_command(server, testbed.settings(), "drill.py", f"drill_backup={name}")

    assert run.returncode != 0, run.describe()
    assert_no_traceback(run)
    cause = f"rows of public.events: the manifest says {rows + 1}, the restored database has {rows}"
    assert f"the restore drill of {name} FAILED: {cause}" in run.output
    assert any("rows of public.events" in line and line.endswith("DIFFERS") for line in run.output.splitlines())
    assert last_drill(server)["cause"] == cause
    assert scratch_containers(server) == ""
