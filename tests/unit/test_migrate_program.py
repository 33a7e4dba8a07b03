"""srq-hpn-migrate, run for real with bash and jq, and a stand-in `docker` on PATH that
logs every call: the rehearsal on a copy of production before production's migration,
nothing migrated when it fails there (alembic's words and the copy's rows shown, without
the traceback's frames), the migration container cut off from every network but the
rehearsal's, the superuser's password never on a command line, the record the checklist
reads, and everything the rehearsal started removed."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from tasks import render

PROGRAM = render.SERVER_PROGRAMS / "srq-hpn-migrate"
PASSWORD = "s3cret-Superuser-Passw0rd-never-shown"
LABEL = "pre-migration-0003-to-0004"
BACKUP = f"srq-hpn-20260301T020000Z-{LABEL}"
ALEMBIC_FAILURE = """INFO  [alembic.runtime.migration] Running upgrade 0003 -> 0004, an index, a note required
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/sqlalchemy/engine/base.py", line 1967, in _exec_single_context
    self.dialect.do_execute(
psycopg.errors.NotNullViolation: column "note" of relation "events" contains null values

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/usr/bin/alembic", line 33, in <module>
    sys.exit(load_entry_point('alembic', 'console_scripts', 'alembic')())
sqlalchemy.exc.IntegrityError: (psycopg.errors.NotNullViolation) column "note" of relation "events" contains null values
[SQL: ALTER TABLE events ALTER COLUMN note SET NOT NULL]"""
pytestmark = pytest.mark.skipif(not shutil.which("jq"), reason="needs jq")


@pytest.fixture
def server(tmp_path):
    """A deploy.env, the app's env file, one pre-migration backup, a stand-in docker."""
    backups, state, app, bin_dir = (tmp_path / name for name in ("backups", "state", "app", "bin"))
    for directory in (backups / BACKUP, state, app, bin_dir):
        directory.mkdir(parents=True)
    files = {"db.dump": b"PGDMP dump", "globals.sql": b"CREATE ROLE srq_hpn_app;\n"}
    for name, data in files.items():
        (backups / BACKUP / name).write_bytes(data)
    (backups / BACKUP / "manifest.json").write_text(json.dumps({
        "name": BACKUP, "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                                  for name, data in files.items()}}))
    (app / ".env.production").write_text(f"COMPOSE_FILE=compose.yml:{state}/compose.deploy.yml\n"
                                         f"POSTGRES_PASSWORD='{PASSWORD}'\n")
    (bin_dir / "docker").write_text(f"""#!/bin/bash
log={tmp_path}/calls
printf '%s\\n' "$*" >>"$log"
[ -z "$POSTGRES_PASSWORD" ] || echo "env POSTGRES_PASSWORD for: $1 $2" >>"$log"
[ -z "$COMPOSE_FILE" ] || echo "env COMPOSE_FILE=$COMPOSE_FILE for: $*" >>"$log"
case "$*" in
  "compose --env-file .env.production config --format json")
    echo '{{"services": {{"api": {{"networks": {{"'"${{NETWORKS:-rehearsal}}"'": null}}}}}}}}' ;;
  *"compose --env-file .env.production run"*)
    if [ -n "$COMPOSE_FILE" ] && [ -n "$REHEARSAL_HANGS" ]; then touch {tmp_path}/running; exec sleep 30; fi
    if [ -z "$COMPOSE_FILE" ] && [ -n "$PRODUCTION_TAKES" ]; then
      touch {tmp_path}/running; sleep "$PRODUCTION_TAKES"; exit "${{PRODUCTION_EXIT:-0}}"; fi
    if [ -n "$COMPOSE_FILE" ] && [ -n "$REHEARSAL_EXIT" ]; then exit "$REHEARSAL_EXIT"; fi
    if [ -z "$COMPOSE_FILE" ] && [ -n "$PRODUCTION_EXIT" ]; then exit "$PRODUCTION_EXIT"; fi
    if [ -n "$COMPOSE_FILE" ] && [ -n "$REHEARSAL_FAILS" ]; then cat {tmp_path}/alembic-failure >&2; exit 1; fi
    if [ -z "$COMPOSE_FILE" ] && [ -n "$PRODUCTION_FAILS" ]; then cat {tmp_path}/alembic-failure >&2; exit 1; fi
    echo "INFO  [alembic.runtime.migration] Running upgrade 0003 -> 0004" >&2 ;;
  "ps -aq --no-trunc"*service=db*) echo live-db ;;
  "ps -aq --filter label=org.srq-hpn.rehearsal="*) echo scratch-id ;;
  "network ls -q --filter label=org.srq-hpn.rehearsal="*) echo network-id ;;
  "inspect --format {{{{.Image}}}} live-db") echo sha256:postgres ;;
  "inspect --format {{{{.State.Running}}}}"*) echo true ;;
  "exec -i srq-hpn-rehearsal-db-"*"SELECT format"*) ;;
  "exec -i srq-hpn-rehearsal-db-"*psql*) cat >/dev/null; printf 'public.events\\t5\\npublic.alembic_version\\t1\\n' ;;
  "exec live-db psql"*alembic_version*) echo "${{REVISION_NOW:-0003}}" ;;
  exec*psql*) echo 'CREATE ROLE srq_hpn;' ;;
  "exec -i"*) cat >/dev/null ;;
esac
exit 0
""")
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "alembic-failure").write_text(ALEMBIC_FAILURE + "\n")
    config = tmp_path / "deploy.env"
    config.write_text(f"APP_DIR={app}\nSTATE_DIR={state}\nENV_FILE=.env.production\nBACKUP_DIR={backups}\n"
                      "DB_SERVICE=db\nMIGRATE_SERVICE=api\nDB_USER=srq_hpn\nDB_NAME=srq_hpn\nDB_READY_TIMEOUT=5\n"
                      f"REHEARSAL_LABEL=org.srq-hpn.rehearsal\nMIGRATION_RECORD={state}/migrations/last.json\n")
    (state / "stack.env").write_text("PROJECT=srq-hpn\nDB_CONTAINER=srq-hpn-db\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SRQ_HPN_CONFIG": str(config)}
    return {"dir": tmp_path, "state": state, "env": env, "record": state / "migrations" / "last.json"}


def migrate(server, *args, **env):
    done = subprocess.run(["bash", str(PROGRAM), *args], env={**server["env"], **env}, capture_output=True,
                          text=True, timeout=60)
    calls = (server["dir"] / "calls").read_text().splitlines()
    return done, calls


def compose_runs(calls):
    return [call for call in calls if call.startswith("compose --env-file .env.production run")]


def test_a_migration_that_passes_its_rehearsal_then_runs_on_production(server):
    done, calls = migrate(server, "--from", "0003", "--to", "0004", "--rehearse", LABEL)
    assert done.returncode == 0, done.stderr
    rehearsal, production = compose_runs(calls)
    assert "--label org.srq-hpn.rehearsal=" in rehearsal and rehearsal.endswith("api alembic upgrade head")
    assert production == "compose --env-file .env.production run --rm --no-deps -T api alembic upgrade head"
    # The copy: the labelled backup, in a scratch database on an internal network of its own, known as db.
    created = next(call for call in calls if call.startswith("network create"))
    assert created.startswith("network create --internal --label org.srq-hpn.rehearsal=")
    network = created.split()[-1]
    started = next(call for call in calls if call.startswith("run -d"))
    assert f"--network {network} --network-alias db --network-alias srq-hpn-db" in started
    assert started.endswith("-e POSTGRES_PASSWORD sha256:postgres")
    assert any(call.startswith("env COMPOSE_FILE=") and call.endswith("api alembic upgrade head") and
               "rehearsal.yml" in call for call in calls)
    # The superuser's password reaches the scratch database through docker's environment only.
    assert PASSWORD not in "\n".join(calls) and PASSWORD not in done.stdout + done.stderr
    assert "env POSTGRES_PASSWORD for: run -d" in calls
    assert f"Rehearsing the migration 0003 -> 0004 on a copy of production: backup {BACKUP} (6 rows in 2 tables)" \
        in done.stdout
    assert "Rehearsal passed: the migration 0003 -> 0004 took " in done.stdout
    assert "Migrated production 0003 -> 0004 in " in done.stdout
    record = json.loads(server["record"].read_text())
    assert record["result"] == "migrated" and record["from"] == "0003" and record["to"] == "0004"
    assert record["rehearsal"]["result"] == "passed" and record["rehearsal"]["backup"] == BACKUP
    assert all(isinstance(value, (int, float)) for value in (record["rehearsal"]["duration_s"], record["duration_s"]))
    # What the rehearsal started is removed.
    assert "rm -f -v scratch-id" in calls and "network rm network-id" in calls
    assert not list(server["state"].glob(".migrate-*"))


def test_a_migration_that_fails_its_rehearsal_never_runs_on_production(server):
    done, calls = migrate(server, "--from", "0003", "--to", "0004", "--rehearse", LABEL, REHEARSAL_FAILS="1")
    assert done.returncode == 1
    assert len(compose_runs(calls)) == 1  # the rehearsal's, never production's
    err = done.stderr
    assert 'sqlalchemy.exc.IntegrityError: (psycopg.errors.NotNullViolation) column "note" of relation "events" ' \
           "contains null values" in err
    assert "[SQL: ALTER TABLE events ALTER COLUMN note SET NOT NULL]" in err
    assert "Traceback" not in err and 'File "' not in err  # alembic's words, not the frames
    assert "which tables the migration touched cannot be told reliably" in err
    assert "  | public.events" in err and err.index("public.events") > err.index("IntegrityError")
    assert "hint: the lines above are alembic's; nothing was restarted and the running version keeps serving" in err
    assert err.strip().splitlines()[-1] == ("migration 0003 -> 0004 not run: its rehearsal on a copy of production "
                                            "did not pass; production is untouched")
    record = json.loads(server["record"].read_text())
    assert record["result"] == "stopped" and record["rehearsal"]["result"] == "failed"
    assert "fails on production's data" in record["cause"]
    assert "rm -f -v scratch-id" in calls and "network rm network-id" in calls


def test_a_migration_that_fails_on_production_after_its_rehearsal_is_recorded_so(server):
    done, calls = migrate(server, "--from", "0003", "--to", "0004", "--rehearse", LABEL, PRODUCTION_FAILS="1")
    assert done.returncode == 1 and len(compose_runs(calls)) == 2
    assert "contains null values" in done.stderr and "Traceback" not in done.stderr
    assert "hint: the lines above are alembic's; nothing was restarted and the running version keeps serving" \
        in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("migration 0003 -> 0004 failed on production")
    record = json.loads(server["record"].read_text())
    assert record["result"] == "failed" and record["rehearsal"]["result"] == "passed"


def test_a_migration_container_that_would_reach_other_networks_is_not_run(server):
    done, calls = migrate(server, "--from", "0003", "--to", "0004", "--rehearse", LABEL, NETWORKS="default")
    assert done.returncode == 1
    assert compose_runs(calls) == [] and not any(call.startswith("run -d") for call in calls)
    assert "could not be cut off from every network but its own" in done.stderr
    assert json.loads(server["record"].read_text())["result"] == "stopped"


def test_without_a_backup_of_its_label_the_newest_verified_one_is_the_copy(server):
    done, calls = migrate(server, "--from", "0003", "--to", "0005", "--rehearse", "pre-migration-0003-to-0005")
    assert done.returncode == 0, done.stderr
    assert f"no backup labelled pre-migration-0003-to-0005: rehearsing on the newest verified backup, {BACKUP}" \
        in done.stdout


def test_unrehearsed_it_says_why_and_runs_on_production_only(server):
    done, calls = migrate(server, "--from", "0003", "--to", "0004", "--unrehearsed", "srq_hpn_migration_rehearsal is off")
    assert done.returncode == 0, done.stderr
    assert compose_runs(calls) == ["compose --env-file .env.production run --rm --no-deps -T api alembic upgrade head"]
    assert not any(call.startswith(("run -d", "network create")) for call in calls)
    record = json.loads(server["record"].read_text())
    assert record["result"] == "migrated"
    assert record["rehearsal"] == {"result": "not-rehearsed", "why": "srq_hpn_migration_rehearsal is off",
                                   "backup": None, "duration_s": None}


def test_a_database_without_data_has_nothing_to_rehearse_on(server):
    done, calls = migrate(server, "--from", "unknown", "--to", "0002", "--no-data")
    assert done.returncode == 0, done.stderr
    assert len(compose_runs(calls)) == 1 and not any(call.startswith("run -d") for call in calls)
    record = json.loads(server["record"].read_text())
    assert record["result"] == "migrated" and record["rehearsal"]["result"] == "not-needed"


@pytest.mark.parametrize("args", [(), ("--from", "0003"), ("--from", "0003", "--to", "0004"),
                                  ("--from", "0003", "--to", "0004", "--rehearse", "bad label;rm")])
def test_it_refuses_incomplete_or_unsafe_arguments(server, args):
    done = subprocess.run(["bash", str(PROGRAM), *args], env=server["env"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode != 0 and ("usage:" in done.stderr or "not a backup label" in done.stderr)
    assert not server["record"].exists() and not os.path.exists(server["dir"] / "calls")


# --- Killed mid-migration: the record says so ------------------------------------------


def started(server, *args, **env) -> subprocess.Popen:
    """srq-hpn-migrate started, once its stand-in alembic runs (the stand-in says so)."""
    process = subprocess.Popen(["bash", str(PROGRAM), *args], env={**server["env"], **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (server["dir"] / "running").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    return process


def history(server) -> list[dict]:
    return [json.loads(line) for line in (server["record"].parent / "history.jsonl").read_text().splitlines()]


REHEARSED = ("--from", "0003", "--to", "0004", "--rehearse", LABEL)


def test_while_it_runs_the_record_says_in_progress_and_where(server):
    process = started(server, *REHEARSED, REHEARSAL_HANGS="1")
    try:
        record = json.loads(server["record"].read_text())
        assert record["result"] == "in-progress" and record["phase"] == "rehearsal", record
        assert record["pid"] == process.pid and record["boot"] == open("/proc/sys/kernel/random/boot_id").read().strip()
        assert record["from"] == "0003" and record["to"] == "0004"
        assert not (server["record"].parent / "history.jsonl").exists()  # a result goes there, not a start
    finally:
        process.kill()
        process.communicate()


def test_stopped_by_a_signal_during_the_rehearsal_it_records_interrupted_at_once(server):
    process = started(server, *REHEARSED, REHEARSAL_HANGS="1")
    begun = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - begun < 10  # the rehearsal is not waited for: production is untouched
    record = json.loads(server["record"].read_text())
    assert record["result"] == "interrupted" and record["phase"] == "rehearsal", record
    assert record["rehearsal"]["result"] == "interrupted"
    assert record["cause"] == ("srq-hpn-migrate was stopped by SIGTERM during the rehearsal on a copy of production: "
                               "production's database was not touched")
    assert history(server) == [record]
    calls = (server["dir"] / "calls").read_text().splitlines()
    assert len(compose_runs(calls)) == 1  # the rehearsal's; production's never started
    assert "rm -f -v scratch-id" in calls and "network rm network-id" in calls
    assert not list(server["state"].glob(".migrate-*"))
    assert "interrupted (stopped by SIGTERM) during its rehearsal: production's database was not touched" in err


def test_stopped_while_production_migrates_it_waits_for_alembic_then_records_where_production_is(server):
    process = started(server, *REHEARSED, PRODUCTION_TAKES="1", REVISION_NOW="0004")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM
    record = json.loads(server["record"].read_text())
    # alembic ended, and production is at the release's revision: migrated, as it is.
    assert record["result"] == "migrated" and record["rehearsal"]["result"] == "passed", record
    assert record["cause"] == ("srq-hpn-migrate was stopped by SIGTERM after alembic upgrade head ended on "
                               "production, which is at 0004")


def test_interrupted_on_production_before_its_revision_moved_it_records_interrupted(server):
    process = started(server, *REHEARSED, PRODUCTION_TAKES="1", PRODUCTION_EXIT="143", REVISION_NOW="0003")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGINT
    record = json.loads(server["record"].read_text())
    assert record["result"] == "interrupted" and record["phase"] == "production", record
    assert record["cause"] == ("srq-hpn-migrate was stopped by SIGINT while alembic upgrade head ran on production; "
                               "its database is at 0003 (from 0003, to 0004)")
    assert "its database is at 0003; deploy again" in err


def test_killed_outright_it_leaves_in_progress_which_the_next_run_records_as_interrupted(server):
    process = started(server, *REHEARSED, REHEARSAL_HANGS="1")
    process.kill()  # SIGKILL: no trap runs
    process.communicate(timeout=20)
    record = json.loads(server["record"].read_text())
    assert record["result"] == "in-progress" and record["phase"] == "rehearsal" and record["pid"] == process.pid
    (server["dir"] / "running").unlink()

    done, calls = migrate(server, *REHEARSED)

    assert done.returncode == 0, done.stderr
    killed, last = history(server)
    assert killed == {**record, "result": "interrupted",
                      "cause": "it never finished: srq-hpn-migrate was killed, or the server stopped, during the "
                               "rehearsal"}
    assert last["result"] == "migrated" and last == json.loads(server["record"].read_text())
    # What the killed run left (its scratch container, its network) is removed by this one.
    assert calls.count("rm -f -v scratch-id") >= 1


@pytest.mark.parametrize("where, env, result", [
    ("the rehearsal's", {"REHEARSAL_EXIT": "137"}, "interrupted"),
    ("production's", {"PRODUCTION_EXIT": "137"}, "failed"),
])
def test_a_migration_container_killed_is_not_taken_for_a_result(server, where, env, result):
    done, _ = migrate(server, *REHEARSED, **env)
    assert done.returncode == 1
    record = json.loads(server["record"].read_text())
    assert record["result"] == result, record
    assert "stopped by a signal" in record["cause"] and "(exit status 137: killed, or out of memory)" in record["cause"]
    assert "exit status 137" in done.stderr.strip().splitlines()[-1]
    if result == "interrupted":
        assert record["phase"] == "rehearsal" and "production's database was not touched" in record["cause"]
    else:
        assert record["cause"].endswith("its database is at 0003")
