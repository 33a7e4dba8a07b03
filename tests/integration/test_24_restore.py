"""Scenario 24: the guarded restore. Without the confirmation it refuses before anything
changes. With it, rows written through the api and backed up come back exactly (a
`pg_dump --data-only` of the restored database equals the one taken at backup time),
after the app's password was rotated and rows changed and deleted; `/` keeps answering
through Caddy throughout (the maintenance page while the app is stopped); a safety
backup holds what was replaced; the app role works with the current password; the
Docker volume is the same one; the audit log has the restore's line."""

import subprocess
import threading
import time

import psycopg

from tests.integration.helpers import (
    assert_no_traceback,
    audit_log,
    backup_dir_listing,
    backups,
    data_dump,
    deploy,
    env_file_values,
    lock_is_free,
    manifest,
    psql,
    run_command,
    take_backup,
)
from tests.testbed import harness

VOLUME = "srq-hpn_postgres_data"


def post_event(server, ca, title: str) -> dict:
    answer = harness.https_get(server, "/api/events", ca, method="POST", headers={"Content-Type": "application/json"},
                               body=f'{{"title": "{title}", "starts_at": "2026-06-01T18:00:00Z"}}'.encode())
    assert answer.status == 201, answer.text
    return answer.json()


class Watcher(threading.Thread):
    """GETs / through Caddy over and over, recording every answer (or error)."""

    def __init__(self, server, ca):
        super().__init__(daemon=True)
        self.server, self.ca, self.answers, self.stop = server, ca, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                answer = harness.https_get(self.server, "/", self.ca, timeout=20)
                self.answers.append((answer.status, answer.header("Retry-After")))
            except OSError as error:
                self.answers.append((f"{type(error).__name__}: {error}", None))
            time.sleep(0.1)


def test_a_restore_is_refused_without_the_confirmation(deployed, server, testbed):
    name = take_backup(server)
    before = (audit_log(server), backup_dir_listing(server), data_dump(server))
    for data in ([f"restore_backup={name}"], [f"restore_backup={name}", "restore_confirm=example.org"]):
        run = run_command(server, testbed.settings(), "restore.py", *data)
        assert run.returncode != 0, run.describe()
        assert_no_traceback(run)
        assert "restore refused" in run.output
        assert "restore_confirm must be the domain (srq-hpn.test) or the database's name (srq_hpn)" in run.output
    assert (audit_log(server), backup_dir_listing(server), data_dump(server)) == before
    assert lock_is_free(server)


def test_a_restore_brings_the_data_back_while_caddy_keeps_answering(deployed, server, testbed, caddy_ca):
    kept = [post_event(server, caddy_ca, f"round trip {n}") for n in range(3)]
    name = take_backup(server)
    at_backup = data_dump(server)
    volume = server.exec(f"docker volume inspect --format '{{{{.CreatedAt}}}}' {VOLUME}")[1]

    # After the backup: the app's password is rotated, rows are changed, deleted and added.
    new_password = subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    deploy(server, testbed.settings(), env={"POSTGRES_APP_PASSWORD": new_password})
    psql(server, f"UPDATE events SET title = 'changed' WHERE id = {kept[0]['id']}")
    psql(server, f"DELETE FROM events WHERE id = {kept[1]['id']}")
    post_event(server, caddy_ca, "written after the backup")
    rows_replaced = int(psql(server, "SELECT count(*) FROM events"))
    assert data_dump(server) != at_backup

    watcher = Watcher(server, caddy_ca)
    watcher.start()
    try:
        run = run_command(server, testbed.settings(), "restore.py", f"restore_backup={name}",
                          "restore_confirm=srq-hpn.test")
    finally:
        watcher.stop.set()
        watcher.join()
    assert run.returncode == 0, run.describe()

    assert data_dump(server) == at_backup
    # `/` answered every time: the page, or the maintenance page (503, Retry-After) while the app was stopped.
    errors = [answer for answer in watcher.answers if answer[0] not in (200, 503)]
    assert not errors, f"/ did not answer through Caddy: {errors[:5]}"
    assert all(retry == "30" for status, retry in watcher.answers if status == 503)
    assert (503, "30") in watcher.answers, "the maintenance page was never seen"
    assert watcher.answers[-1][0] == 200

    # The safety backup holds what was replaced.
    safety = [b for b in backups(server) if b.endswith("-before-restore")][-1]
    assert manifest(server, safety)["tables"]["public.events"] == rows_replaced
    # The app role works with the current (rotated) password, with its grants.
    values = env_file_values(server)
    assert values["POSTGRES_APP_PASSWORD"] == new_password
    with harness.db_tunnel(server) as port:
        with psycopg.connect(host="127.0.0.1", port=port, dbname="srq_hpn", user="srq_hpn_app",
                             password=new_password, autocommit=True, connect_timeout=10) as connection:
            titles = [row[0] for row in connection.execute("SELECT title FROM events ORDER BY id")]
            connection.execute("INSERT INTO event_tags (event_id, tag) VALUES (%s, 'restored')", (kept[0]["id"],))
    assert [event["title"] for event in kept] == [t for t in titles if t.startswith("round trip ")]
    assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200
    # Same volume; the lock released and the restore in the audit log.
    assert server.exec(f"docker volume inspect --format '{{{{.CreatedAt}}}}' {VOLUME}")[1] == volume
    assert lock_is_free(server)
    last = audit_log(server)[-1]
    assert (last["action"], last["result"], last["backup"]) == ("restore", "ok", name)
