"""The migration rehearsal's pure parts: which migrations are rehearsed (and a release
without one pays nothing), the plan's words, srq-hpn-migrate's command line, and the
checklist's verdict on the record it leaves (run in bash as the server runs it)."""

import json
import os
import shlex
import subprocess
import time

import pytest

from tasks import checks, layout, render, rehearsal
from tasks.plan import Migration, migration_of
from tasks.rehearsal import migrate_command, rehearsal_of

LIVE = {"revisions": ["0002"], "tables": 3}


def test_a_migration_of_a_database_with_data_is_rehearsed_when_the_setting_is_on():
    migration = rehearsal_of(migration_of(LIVE, ["0003"], True), enabled=True)
    assert migration.rehearsed and migration.unrehearsed_why == ""
    assert migration.words() == "migrate 0002 -> 0003, rehearsed on a copy first, after a backup pre-migration-0002-to-0003"
    unknown = rehearsal_of(migration_of(None, ["0003"], True), enabled=True)  # the database does not answer yet
    assert unknown.rehearsed and "rehearsed on a copy first" in unknown.words()


def test_off_the_plan_says_it_is_not_rehearsed():
    migration = rehearsal_of(migration_of(LIVE, ["0003"], True), enabled=False)
    assert not migration.rehearsed
    assert migration.words() == ("migrate 0002 -> 0003, after a backup pre-migration-0002-to-0003, "
                                 "not rehearsed (srq_hpn_migration_rehearsal is off)")


def test_an_empty_database_and_a_release_without_a_migration_pay_nothing():
    empty = rehearsal_of(migration_of({"revisions": [], "tables": 0}, ["0002"], False), enabled=True)
    assert not empty.rehearsed and empty.unrehearsed_why == rehearsal.NOT_NEEDED
    assert empty.words() == "migrate an empty database -> 0002"  # no backup, no copy: nothing to say
    current = migration_of(LIVE, ["0002"], True)
    assert rehearsal_of(current, enabled=True) is current and not current.pending


def test_the_server_programs_command_line():
    rehearsed = rehearsal_of(migration_of(LIVE, ["0003"], True), enabled=True)
    assert shlex.split(migrate_command(rehearsed)) == [
        f"{layout.LIB_DIR}/srq-hpn-migrate", "--from", "0002", "--to", "0003", "--rehearse",
        "pre-migration-0002-to-0003"]
    off = rehearsal_of(migration_of(LIVE, ["0003"], True), enabled=False)
    assert shlex.split(migrate_command(off))[-2:] == ["--unrehearsed", "srq_hpn_migration_rehearsal is off"]
    empty = rehearsal_of(migration_of({"revisions": [], "tables": 0}, ["0001", "0002b"], False), enabled=True)
    assert shlex.split(migrate_command(empty))[1:] == ["--from", "none", "--to", "0001,0002b", "--no-data"]
    # A restore's migration (its plan never decides a rehearsal), and revisions not known yet.
    restored = Migration(("0002",), None, has_data=True)
    assert shlex.split(migrate_command(restored))[1:] == ["--from", "0002", "--to", "unknown", "--unrehearsed",
                                                        rehearsal.NOT_A_DEPLOY]


def test_the_checklist_item_is_the_guides():
    item = checks.BY_KEY["migrations"]
    assert (item.section, item.title) == (checks.DATABASE, "Tested migrations locally before deploying")
    keys = [i.key for i in checks.ITEMS]
    assert keys.index("migrations") == keys.index("app_role") - 1  # the guide's order


def judge(tmp_path, record: dict | None, setting: str = "on", age_s: int = 60,
          live: str = "") -> tuple[str, str]:
    """check_migrations on a server whose last migration left ``record`` (None: none), and
    whose database is at the revisions ``live`` (comma-separated; "": it does not answer),
    as a stand-in `docker` says."""
    path = tmp_path / "migrations" / "last.json"
    path.parent.mkdir(exist_ok=True)
    if record is not None:
        path.write_text(json.dumps(record))
        then = time.time() - age_s
        os.utime(path, (then, then))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text('#!/bin/bash\ncase "$*" in\n'
                                    '  "ps -aq"*service=db*) [ -z "$LIVE" ] || echo live-db ;;\n'
                                    '  "exec live-db psql"*alembic_version*) tr , "\\n" <<<"$LIVE" ;;\n'
                                    'esac\n')
    (bin_dir / "docker").chmod(0o755)
    config = tmp_path / "deploy.env"
    config.write_text(f"STATE_DIR={tmp_path}\nMIGRATION_RECORD={path}\nMIGRATION_REHEARSAL={setting}\n"
                      "DB_SERVICE=db\nDB_USER=srq_hpn\nDB_NAME=srq_hpn\n")
    done = subprocess.run(
        ["bash", "-c", f'. "{render.SERVER_PROGRAMS}/lib.sh"; . "{render.SERVER_PROGRAMS}/checks.sh"; '
                       "run_check migrations"],
        capture_output=True, text=True, timeout=30,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SRQ_HPN_CONFIG": str(config), "LIVE": live})
    item, status, evidence = done.stdout.rstrip("\n").split("\t")
    assert item == "migrations", done.stderr
    return status, evidence


def record(result: str, rehearsed: str, frm: str = "0002", why=None, backup=None, duration=None) -> dict:
    return {"time": "2026-03-01T09:00:00Z", "from": frm, "to": "0003", "result": result, "cause": None,
            "rehearsal": {"result": rehearsed, "why": why, "backup": backup, "duration_s": duration},
            "duration_s": 0.4}


@pytest.mark.skipif(not __import__("shutil").which("jq"), reason="needs jq")
def test_the_checklist_reads_the_last_migrations_record(tmp_path):
    backup = "srq-hpn-20260301T085900Z-pre-migration-0002-to-0003"
    status, evidence = judge(tmp_path, record("migrated", "passed", backup=backup, duration=1.3), age_s=300)
    assert status == "pass"
    assert evidence == (f"the last migration deployed, 0002 -> 0003, 5 min ago, was rehearsed first on a copy of "
                        f"production (backup {backup}): 1.3s there")
    status, evidence = judge(tmp_path, record("migrated", "not-needed", frm="unknown", why=rehearsal.NOT_NEEDED),
                             age_s=600)
    assert status == "pass" and evidence == "the last migration deployed, to 0003, 10 min ago, ran on an empty database: " \
        "nothing to rehearse on"
    status, evidence = judge(tmp_path, record("migrated", "not-rehearsed", why=rehearsal.NOT_A_DEPLOY))
    assert status == "warn" and f"was not rehearsed on a copy of production first ({rehearsal.NOT_A_DEPLOY})" in evidence
    status, evidence = judge(tmp_path, record("stopped", "failed", backup=backup, duration=0.2))
    assert status == "warn" and "did not pass its rehearsal on a copy of production and was not deployed" in evidence
    status, evidence = judge(tmp_path, record("failed", "passed", backup=backup, duration=0.2))
    assert status == "fail" and f"failed on production after passing its rehearsal on a copy of {backup}" in evidence
    # Turned off: a warn, whatever the last one was.
    status, evidence = judge(tmp_path, record("migrated", "passed", backup=backup, duration=1.3), setting="off")
    assert status == "warn" and evidence.startswith("migration rehearsal is off (srq_hpn_migration_rehearsal = False)")


BOOT = open("/proc/sys/kernel/random/boot_id").read().strip()


def unfinished(result: str, phase: str, pid: int, cause=None, boot: str = BOOT) -> dict:
    return {**record(result, "interrupted" if result == "interrupted" and phase == "rehearsal" else "passed"),
            "phase": phase, "pid": pid, "boot": boot, "cause": cause}


def a_dead_pid() -> int:
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.mark.skipif(not __import__("shutil").which("jq"), reason="needs jq")
def test_a_migration_killed_or_interrupted_never_passes(tmp_path):
    # Killed outright (SIGKILL, the server stopped): "in-progress" left, and no such program runs.
    status, evidence = judge(tmp_path, unfinished("in-progress", "production", a_dead_pid()), age_s=600)
    assert status == "fail"
    assert evidence.startswith("the last migration tried, 0002 -> 0003, started 10 min ago, never finished: "
                               "srq-hpn-migrate was killed, or the server stopped, while it ran on production "
                               "(its database may be at either revision); deploy again")
    status, evidence = judge(tmp_path, unfinished("in-progress", "rehearsal", a_dead_pid()))
    assert status == "warn" and "during its rehearsal on a copy of production (production's database untouched)" \
        in evidence
    # The same process id after a reboot is another process.
    with subprocess.Popen(["bash", "-c", "sleep 30; exit", "srq-hpn-migrate"]) as other:
        try:
            status, _ = judge(tmp_path, unfinished("in-progress", "production", other.pid, boot="another-boot"))
            assert status == "fail"
            # Running now: not a result yet.
            status, evidence = judge(tmp_path, unfinished("in-progress", "production", other.pid))
            assert status == "warn" and evidence.startswith(
                f"a migration, 0002 -> 0003, is running now (process {other.pid}, in its production phase since")
        finally:
            other.kill()
    # Stopped by a signal: its cause.
    cause = "srq-hpn-migrate was stopped by SIGTERM while alembic upgrade head ran on production; its database is " \
            "at 0002 (from 0002, to 0003)"
    status, evidence = judge(tmp_path, unfinished("interrupted", "production", a_dead_pid(), cause), age_s=600)
    assert status == "fail" and evidence.startswith(f"the last migration tried, 0002 -> 0003, 10 min ago, was "
                                                    f"interrupted: {cause}; deploy again")
    status, evidence = judge(tmp_path, unfinished("interrupted", "rehearsal", a_dead_pid(), "stopped during it"))
    assert status == "warn" and "was interrupted: stopped during it; deploy again" in evidence


@pytest.mark.skipif(not __import__("shutil").which("jq"), reason="needs jq")
def test_killed_while_alembic_went_on_to_the_end_production_says_so(tmp_path):
    """Only srq-hpn-migrate killed, its alembic went on and ended: no migration is left for a
    deploy to run; production's database, at the release's revision, is what tells."""
    status, evidence = judge(tmp_path, unfinished("in-progress", "production", a_dead_pid()), live="0003", age_s=600)
    assert status == "warn", evidence
    assert evidence.startswith("the last migration tried, 0002 -> 0003, started 10 min ago, never finished: "
                               "srq-hpn-migrate was killed, or the server stopped, while it ran on production, "
                               "though production's database is at 0003 now: alembic ended there; the next "
                               "migration's record replaces this one")
    status, evidence = judge(tmp_path, unfinished("interrupted", "production", a_dead_pid(), "stopped"), live="0003")
    assert status == "warn" and "was interrupted: stopped, though production's database is at 0003 now" in evidence
    # Still at the revision before: a fail, and a deploy runs what is left.
    status, evidence = judge(tmp_path, unfinished("in-progress", "production", a_dead_pid()), live="0002")
    assert status == "fail" and "(its database may be at either revision); deploy again" in evidence


@pytest.mark.skipif(not __import__("shutil").which("jq"), reason="needs jq")
def test_no_record_yet(tmp_path):
    status, evidence = judge(tmp_path, None)
    assert status == "not-set-up" and evidence.startswith("no migration recorded on this server yet")  # a warn
    status, evidence = judge(tmp_path, None, setting="off")
    assert status == "warn" and evidence.startswith("migration rehearsal is off")


def test_deploy_env_tells_the_programs_where_the_record_is(settings):
    values = render.parse_env_file(render.deploy_env(settings))
    assert values["MIGRATION_RECORD"] == settings.paths.migration_record
    assert values["MIGRATION_REHEARSAL"] == ("on" if settings.migration_rehearsal else "off")
    assert values["REHEARSAL_LABEL"] == layout.REHEARSAL_LABEL != layout.DRILL_LABEL
