"""srq-hpn-backup after a reboot: it waits (bounded) for the database container to run
and accept connections, and its unit has systemd run a failed run again, a bounded
number of times. Run for real with bash, jq and flock, and stand-ins for `docker` (a
database that comes up when the test says so, dumps made up) and `systemctl` (the
unit's invocation and restart count)."""

import os
import shutil
import subprocess
import threading
from dataclasses import replace

import pytest

from tasks import layout, render

PROGRAM = render.SERVER_PROGRAMS / "srq-hpn-backup"
pytestmark = pytest.mark.skipif(not (shutil.which("jq") and shutil.which("flock")), reason="needs jq and flock")

DATA_ONLY = """COPY public.alembic_version (version_num) FROM stdin;
0002
\\.
"""


@pytest.fixture
def server(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "data-only.sql").write_text(DATA_ONLY)
    up = tmp_path / "db-up"  # the database container runs once this file exists
    (bin_dir / "docker").write_text(f"""#!/bin/bash
running() {{ [ -e "{up}" ]; }}
case "$*" in
  ps\\ *) echo db1 ;;
  *"{{{{.State.Running}}}}"*) running && echo true || echo false ;;
  *"{{{{.State.Status}}}} {{{{if .State.Health}}}}"*) running && echo "running none 0" || echo "exited none 0" ;;
  *"{{{{.State.Status}}}}"*) running && echo running || echo exited ;;
  *Healthcheck*) ;;
  *"{{{{.Config.Image}}}}"*) echo postgres:16 ;;
  *"{{{{.Name}}}}"*) echo /srq-hpn-db ;;
  *pg_isready*) running ;;
  *" pg_dump "*) running && echo "PGDMP made up" ;;
  *pg_dumpall*) running && echo "CREATE ROLE srq_hpn;" ;;
  *"pg_restore --list"*) cat >/dev/null; printf ';     Dumped from database version: 16.4\\n1; 0 0 TABLE public x\\n' ;;
  *"pg_restore --data-only"*) cat >/dev/null; cat "{tmp_path}/data-only.sql" ;;
  *) echo "docker stand-in: $*" >&2; exit 1 ;;
esac
""")
    (bin_dir / "systemctl").write_text("""#!/bin/sh
case "$*" in
  *InvocationID*) echo "$TEST_UNIT_INVOCATION" ;;
  *NRestarts*) echo "$TEST_UNIT_RESTARTS" ;;
esac
""")
    for tool in ("docker", "systemctl"):
        (bin_dir / tool).chmod(0o755)
    config = tmp_path / "deploy.env"
    config.write_text(f"STATE_DIR={tmp_path}/state\nBACKUP_DIR={tmp_path}/backups\nAPP_DIR={tmp_path}\n"
                      "ENV_FILE=.env.production\nDB_SERVICE=db\nCADDY_SERVICE=caddy\nUPSTREAMS=\nDB_USER=srq_hpn\n"
                      "DB_NAME=srq_hpn\nDB_READY_TIMEOUT=600\nBACKUP_TIMER=srq-hpn-backup.timer\n"
                      "KEEP_DAILY=7\nKEEP_WEEKLY=4\nKEEP_MONTHLY=6\nOFFSITE_REPOSITORY=\n")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "SRQ_HPN_CONFIG": str(config)}
    return {"dir": tmp_path, "up": up, "env": env}


def backup(server, wait: int, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(PROGRAM)], env={**server["env"], "SRQ_HPN_DB_WAIT": str(wait), **env},
                          capture_output=True, text=True, timeout=60)


def written(server) -> list[str]:
    return sorted(p.name for p in (server["dir"] / "backups").glob("srq-hpn-*") if (p / "manifest.json").exists())


def test_a_backup_waits_for_a_database_that_starts_late(server):
    later = threading.Timer(2, server["up"].touch)
    later.start()
    try:
        done = backup(server, wait=30)
    finally:
        later.cancel()
    assert done.returncode == 0, done.stderr
    assert "waiting for the database container (up to 30s)" in done.stderr
    assert len(written(server)) == 1 and "written and verified" in done.stdout


def test_a_database_that_does_not_start_fails_the_run_after_the_wait(server):
    done = backup(server, wait=1)
    assert done.returncode == 1
    assert "the database container is not running (exited) after waiting 1s for it: nothing was backed up" \
        in done.stderr
    assert written(server) == []


@pytest.mark.parametrize("restarts, status, said", [
    ("0", 1, "systemd runs it again (Restart=on-failure): 2 more tries"),
    ("1", 1, "systemd runs it again (Restart=on-failure): 1 more try"),
    ("2", 75, "no more tries: the unit stays failed"),
])
def test_the_units_runs_are_tried_again_a_bounded_number_of_times(server, restarts, status, said):
    unit = {"INVOCATION_ID": "f000a0b842214daa93535b649ac68849", "TEST_UNIT_INVOCATION": "f000a0b842214daa93535b649ac68849",
            "TEST_UNIT_RESTARTS": restarts, "SRQ_HPN_BACKUP_RETRIES": "2"}
    done = backup(server, wait=0, **unit)
    assert (done.returncode, said in done.stderr) == (status, True), done.stderr
    # Run by hand (not the unit's invocation), a failure is a plain one.
    done = backup(server, wait=0, **{**unit, "TEST_UNIT_INVOCATION": "another"})
    assert done.returncode == 1 and "systemd" not in done.stderr


def test_backup_unit_retries_a_failed_run(settings):
    service = render.backup_units(replace(settings, postgres_healthy_timeout=240))[layout.BACKUP_SERVICE]
    assert "\nType=oneshot\n" in service and "\nRestart=on-failure\n" in service
    assert "\nRestartSec=2min\n" in service and "\nRestartPreventExitStatus=75\n" in service
    assert "\nEnvironment=SRQ_HPN_BACKUP_RETRIES=2\n" in service
