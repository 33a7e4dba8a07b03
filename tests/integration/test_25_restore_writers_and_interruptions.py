"""Scenario 25: what a restore stops, and a restore that is interrupted.

- A one-off container of the api (`docker compose run`) writing rows in a loop while a
  restore runs is stopped before the safety backup: every row it wrote is in the
  safety backup (or the restored database); none is lost with the replaced database.
- A restore killed (SIGTERM, SIGHUP as when the SSH session drops) after the
  maintenance page went on and before the swap puts everything back: the app answers
  again, the maintenance page is off, the restored copy is dropped, the data is as it was.
- A deploy turns a maintenance page left on (by a restore killed with SIGKILL) off,
  and changes nothing when it is off."""

import base64

import pytest

from tasks import layout
from tests.integration.helpers import (
    BACKUP_DIR,
    COMPOSE,
    assert_stack_is_up,
    backups,
    data_dump,
    deploy,
    psql,
    run_command,
    take_backup,
    wait_until,
)
from tests.testbed import harness

LIB = layout.LIB_DIR
DB, API, WEB = (layout.CONTAINERS[service] for service in (layout.DB, layout.API, layout.WEB))
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


def maintenance(server) -> str:
    return server.exec(f"{LIB}/srq-hpn-maintenance status")[1].strip()


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


def put_the_stack_back(server) -> None:
    """Whatever a failing test left: the maintenance page off, the app running, no restored copy."""
    server.exec(f"{LIB}/srq-hpn-maintenance off; {COMPOSE} up -d --no-recreate && "
                f"{LIB}/srq-hpn-wait 180 api web", check=False, timeout=400)
    server.exec(["docker", "exec", DB, "psql", "-X", "-U", "srq_hpn", "-d", "postgres", "-c",
                 "DROP DATABASE IF EXISTS srq_hpn__restoring WITH (FORCE)"], check=False)


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


@pytest.mark.parametrize("signal", ["TERM", "HUP"])
def test_a_restore_killed_before_the_swap_puts_everything_back(deployed, server, testbed, caddy_ca, signal):
    name = backups(server)[-1] if backups(server) else take_backup(server)
    before = data_dump(server)
    # A lock on the events table holds the safety backup's pg_dump: the restore waits there,
    # with the maintenance page on and the app stopped, until the test lets it go.
    server.exec(f"nohup docker exec -e PGAPPNAME=srq-hpn-test-lock {DB} psql -U srq_hpn -d srq_hpn -c "
                "'BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600)' >/dev/null 2>&1 &")
    unlock = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              "WHERE application_name = 'srq-hpn-test-lock'")
    try:
        wait_until(lambda: psql(server, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                        "WHERE a.application_name = 'srq-hpn-test-lock' "
                                        "AND l.mode = 'AccessExclusiveLock' AND l.granted") == "1",
                   "the test's lock on events is taken", timeout=30)
        server.exec(f"rm -f /tmp/restore.out; setsid {LIB}/srq-hpn-restore {name} >/tmp/restore.out 2>&1 "
                    "</dev/null & echo $! > /tmp/restore.pid")
        pid = server.exec("cat /tmp/restore.pid")[1].strip()
        wait_until(lambda: psql(server, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                                        "AND wait_event_type = 'Lock'") == "1",
                   "the restore's safety backup waits for the test's lock", timeout=240)
        # The window: the maintenance page on, the app stopped, the live database not swapped yet.
        assert maintenance(server) == "on"
        assert container_state(server, API) == container_state(server, WEB) == "exited"

        server.exec(f"kill -{signal} {pid}")
        psql(server, unlock)
        wait_until(lambda: server.exec(f"kill -0 {pid}", check=False)[0] != 0, "the restore ends", timeout=400,
                   poll=1)

        _, out = server.exec("cat /tmp/restore.out")
        _, journal = server.exec("journalctl -t srq-hpn-restore --no-pager -n 50", check=False)
        said = out + journal
        assert f"srq-hpn-restore was interrupted (SIG{signal}) before the swap" in said, said
        assert "nothing was restored: the app was started again on the live database, as it was." in said
        assert maintenance(server) == "off"
        assert_stack_is_up(server)
        assert harness.https_get(server, "/", caddy_ca).status == 200
        assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200
        assert psql(server, "SELECT count(*) FROM pg_database WHERE datname LIKE '%restoring%'") == "0"
        assert data_dump(server) == before
    finally:
        psql(server, unlock)
        # A restore still running (one that did not end) is ended by its pid.
        server.exec("[ ! -s /tmp/restore.pid ] || kill -KILL $(cat /tmp/restore.pid) 2>/dev/null; "
                    "rm -f /tmp/restore.out /tmp/restore.pid", check=False)
        put_the_stack_back(server)


def test_a_deploy_turns_a_maintenance_page_left_on_off(deployed, server, testbed, caddy_ca):
    server.exec(f"{LIB}/srq-hpn-maintenance on")  # as a restore killed with SIGKILL leaves it
    try:
        assert harness.https_get(server, "/", caddy_ca).status == 503

        run = deploy(server, testbed.settings())

        assert maintenance(server) == "off"
        assert harness.https_get(server, "/", caddy_ca).status == 200
        assert [op for op in run.changed_operations() if "maintenance page" in op], run.changed_operations()
    finally:
        server.exec(f"{LIB}/srq-hpn-maintenance off")
    # With the page off, the deploy has nothing to do about it.
    again = deploy(server, testbed.settings())
    assert again.changed_operations() == []
