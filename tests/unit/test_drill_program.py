"""srq-hpn-drill's record and leftovers, run for real with bash, jq and flock, and a
stand-in `docker` on PATH whose `docker run` (the scratch database) blocks, so that the
drill can be killed in the middle: a drill that does not finish never leaves an older
"passed" record as the last drill, and the work directories of drills whose process is
gone (they may hold a full dump) are removed by the next drill."""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from tasks import render

PROGRAM = render.SERVER_PROGRAMS / "srq-hpn-drill"
BACKUP = "srq-hpn-20260301T020000Z"
PASSED = {"time": "2026-03-01T09:00:00Z", "backup": "srq-hpn-20260201T020000Z", "from": "local",
          "result": "passed", "duration_s": 9.8, "cause": None, "checks": []}
pytestmark = pytest.mark.skipif(not (shutil.which("jq") and shutil.which("flock")), reason="needs jq and flock")


@pytest.fixture
def server(tmp_path):
    """A deploy.env, one good-looking backup, an older passed drill record, a stand-in docker."""
    backups, drills, bin_dir = tmp_path / "backups", tmp_path / "state" / "drills", tmp_path / "bin"
    for directory in (backups / BACKUP, drills, bin_dir):
        directory.mkdir(parents=True)
    files = {"db.dump": b"PGDMP dump", "globals.sql": b"CREATE ROLE srq_hpn;\n"}
    for name, data in files.items():
        (backups / BACKUP / name).write_bytes(data)
    (backups / BACKUP / "manifest.json").write_text(json.dumps({
        "name": BACKUP, "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                                  for name, data in files.items()},
        "tables": {"public.events": 2}, "alembic_revision": ["0002"]}))
    (drills / "last.json").write_text(json.dumps(PASSED))
    (bin_dir / "docker").write_text(f"""#!/bin/sh
case "$1" in
  ps) case "$*" in *com.docker.compose.service*) echo live-db ;; esac ;;
  inspect) echo sha256:postgres ;;
  run) touch "{tmp_path}/scratch-started"; exec sleep 60 ;;
esac
exit 0
""")
    (bin_dir / "docker").chmod(0o755)
    config = tmp_path / "deploy.env"
    config.write_text(f"STATE_DIR={tmp_path}/state\nBACKUP_DIR={backups}\nDRILL_LABEL=org.srq-hpn.drill\n"
                      "DB_SERVICE=db\nDB_USER=srq_hpn\nDB_NAME=srq_hpn\nDB_APP_USER=srq_hpn_app\n"
                      "DB_READY_TIMEOUT=5\nOFFSITE_REPOSITORY=\n")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "SRQ_HPN_CONFIG": str(config)}
    return {"dir": tmp_path, "backups": backups, "record": drills / "last.json", "history": drills / "history.jsonl",
            "env": env}


def start_drill(server, *args) -> subprocess.Popen:
    """A drill in a session of its own, once it is starting its scratch database."""
    # Its output goes to files: the stand-in's sleep, which outlives a killed drill, holds them open.
    with open(server["dir"] / "out", "w") as out, open(server["dir"] / "err", "w") as err:
        drill = subprocess.Popen(["bash", str(PROGRAM), *args], env=server["env"], start_new_session=True,
                                 stdout=out, stderr=err)
    deadline = time.monotonic() + 20
    while not (server["dir"] / "scratch-started").exists():
        assert drill.poll() is None, (server["dir"] / "err").read_text()
        assert time.monotonic() < deadline, "the drill never started its scratch database"
        time.sleep(0.05)
    return drill


def leftovers(server) -> list[str]:
    return sorted(path.name for path in server["backups"].glob(".drill-*"))


def test_a_drill_killed_in_the_middle_records_that_it_did_not_finish(server):
    drill = start_drill(server)
    try:
        os.killpg(drill.pid, signal.SIGTERM)  # as systemd stops a unit: the drill and the step it runs
        drill.wait(timeout=20)
        err = (server["dir"] / "err").read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(drill.pid, signal.SIGKILL)  # anything of it left
    assert drill.returncode != 0
    record = json.loads(server["record"].read_text())
    assert record["result"] == "failed", record
    assert record["backup"] == BACKUP and "did not finish" in record["cause"] and "SIGTERM" in record["cause"]
    assert json.loads(server["history"].read_text().splitlines()[-1]) == record
    assert f"the restore drill of {BACKUP} did not finish" in err
    assert leftovers(server) == []  # its trap removed its work directory


def next_drill(server) -> subprocess.CompletedProcess:
    """A drill that ends at once (no such backup), after its start."""
    done = subprocess.run(["bash", str(PROGRAM), "srq-hpn-20000101T000000Z"], env=server["env"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "there is no backup srq-hpn-20000101T000000Z" in done.stderr, done.stderr
    return done


def test_a_drill_that_dies_leaves_no_passed_record_and_the_next_removes_its_work(server):
    drill = start_drill(server)
    os.killpg(drill.pid, signal.SIGKILL)  # no trap runs: the drill and its docker are gone
    drill.wait(timeout=20)
    record = json.loads(server["record"].read_text())
    assert record["result"] == "failed" and "did not finish" in record["cause"], record
    (dead,) = leftovers(server)

    done = next_drill(server)

    assert leftovers(server) == []
    assert f"removed {dead} (left by a drill that did not finish)" in done.stdout


def test_the_next_drill_removes_the_work_of_drills_that_are_gone_only(server):
    gone = subprocess.Popen(["true"])
    gone.wait()
    running = subprocess.Popen(["bash", "-c", "exec -a srq-hpn-drill sleep 60"])  # a drill still running
    other = subprocess.Popen(["sleep", "60"])  # a process that is no drill, under a drill's pid
    try:
        time.sleep(0.2)
        names = [f".drill-{gone.pid}-Qw3Er4", f".drill-{running.pid}-AbC123", f".drill-{other.pid}-Zx8Cv7",
                 ".drill-Xy9Zq1"]  # the last: an older version's, named without a pid
        for name in names:
            (server["backups"] / name).mkdir()
            (server["backups"] / name / "db.dump").write_bytes(b"PGDMP a full dump")

        done = next_drill(server)

        assert leftovers(server) == [f".drill-{running.pid}-AbC123"]
        for name in (names[0], names[2], names[3]):
            assert f"removed {name} (left by a drill that did not finish)" in done.stdout
    finally:
        running.kill()
        other.kill()
