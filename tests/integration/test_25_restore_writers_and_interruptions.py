"""Scenario 25: what a restore stops, and a restore that is interrupted.

- A one-off container of the api (`docker compose run`) writing rows in a loop while a
  restore runs is stopped before the safety backup: every row it wrote is in the
  safety backup (or the restored database); none is lost with the replaced database."""

import base64

from tasks import layout
from tests.integration.helpers import (
    BACKUP_DIR,
    COMPOSE,
    backups,
    psql,
    run_command,
    take_backup,
    wait_until,
)
from tests.testbed import harness

DB = layout.CONTAINERS[layout.DB]
WRITER = "srq-hpn-test-writer"
# Rows in a loop through the api's own database engine (DATABASE_URL: its limited role),
# each printed once committed; it reconnects after an error, as an app's job would.
WRITER_CODE = """
import signal, sys, time
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from app.db import get_engine
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
engine, n = get_engine(), 0
while True:
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO events (title, starts_at) VALUES (:t, now())"), {"t": f"writer {n + 1}"})
        n += 1
        print(f"committed writer {n}", flush=True)
        time.sleep(0.05)
    except SQLAlchemyError as error:
        print(f"error {type(error).__name__}", flush=True)
        time.sleep(0.2)
"""


def container_state(server, name: str) -> str:
    return server.exec(["docker", "inspect", "--format", "{{.State.Status}}", name], check=False)[1].strip()


def titles_in_backup(server, name: str) -> set[str]:
    """The titles of the events rows a backup holds (its dump's data, read by pg_restore)."""
    _, out = server.exec(f"docker exec -i {DB} pg_restore --data-only --table=events --file=- "
                         f"< {BACKUP_DIR}/{name}/db.dump")
    rows, inside = set(), False
    for line in out.splitlines():
        if line.startswith("COPY public.events "):
            inside = True
        elif line == "\\.":
            inside = False
        elif inside:
            rows.add(line.split("\t")[1])
    return rows


def test_a_one_off_container_writing_during_a_restore_loses_no_row(deployed, server, testbed, caddy_ca):
    name = take_backup(server)
    code = base64.b64encode(WRITER_CODE.encode()).decode()
    server.exec(f"{COMPOSE} run -d --no-deps --name {WRITER} api "
                f"python3 -c \"import base64; exec(base64.b64decode('{code}'))\"", timeout=120)
    try:
        try:
            wait_until(lambda: server.exec(f"docker logs {WRITER}")[1].count("committed") >= 20,
                       "the one-off container writes rows", timeout=60)
        except AssertionError as error:
            raise AssertionError(f"{error}; its output:\n{server.exec(f'docker logs {WRITER}')[1][-3000:]}") from None

        run = run_command(server, testbed.settings(), "restore.py", f"restore_backup={name}",
                          "restore_confirm=srq-hpn.test")

        assert run.returncode == 0, run.describe()
        state = container_state(server, WRITER)
        server.exec(f"docker stop {WRITER}")  # (on a restore that did not stop it: frozen here to count)
        _, log = server.exec(f"docker logs {WRITER}")
        written = {line.split(" ", 1)[1] for line in log.splitlines() if line.startswith("committed writer ")}
        safety = [b for b in backups(server) if b.endswith("-before-restore")][-1]
        restored = set(psql(server, "SELECT title FROM events WHERE title LIKE 'writer %'").split("\n")) - {""}
        lost = written - titles_in_backup(server, safety) - restored
        assert len(written) >= 20
        assert not lost, f"{len(lost)} of the {len(written)} rows the one-off container wrote are lost: {sorted(lost)[:10]}"
        # It was stopped with the app, before the safety backup (which holds all it wrote), and stays stopped.
        assert state == "exited"
        stopping = next(line for line in run.output.splitlines() if "2/4 maintenance page on; stopping" in line)
        assert WRITER in stopping, stopping
        assert restored == set(), "the one-off container wrote into the restored database"
        assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200
    finally:
        server.exec(f"docker rm -f {WRITER}", check=False)
