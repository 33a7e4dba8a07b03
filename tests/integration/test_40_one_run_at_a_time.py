"""Scenario 40: one run at a time, and interrupted work that converges (on the second
app's server). Two deploys started together: one runs, the other refuses naming the
holder. A deploy killed while it uploads leaves the running version serving and its
lock behind; the next deploy refuses until told to break it, then converges. A
rollback across a migration is refused. The audit log holds one line per action."""

import json
import os
import signal
import subprocess
import tempfile
import threading

from tasks.sourcetree import Upload
from tests.integration.conftest import VARIANT_ENV
from tests.integration.helpers import app_copy, audit_log, deploy, fact, lock_is_free
from tests.testbed import harness


class Deploy:
    """A deploy started in the background, whose output is read as it comes."""

    def __init__(self, server, settings, operator):
        handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(server.inventory(**settings), handle)
        handle.close()
        self.inventory = handle.name
        env = {**os.environ, **VARIANT_ENV, "SRQ_HPN_INVENTORY": handle.name, "SRQ_HPN_OPERATOR": operator,
               "PYTHONUNBUFFERED": "1"}  # its lines as they come
        self.process = subprocess.Popen([harness.pyinfra_command(), "inventory.py", "deploy.py", "-y"],
                                        cwd=harness.REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.seen = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            with self.seen:
                self.lines.append(line)
                self.seen.notify_all()

    def wait_for(self, text, timeout=600):
        with self.seen:
            self.seen.wait_for(lambda: any(text in line for line in self.lines) or self.process.poll() is not None,
                               timeout)
        if not any(text in line for line in self.lines):
            _, output = self.kill()  # a deploy left running would hold the server for the next test
            raise AssertionError(f"{text!r} did not appear:\n{output[-3000:]}")

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:  # it has ended already
            pass
        return self.finish()

    def finish(self, timeout=900):
        self.process.wait(timeout)
        self.reader.join(10)
        os.unlink(self.inventory)
        return self.process.returncode, "".join(self.lines)


def versioned(tmp_path, version, big=False):
    app = app_copy(harness.VARIANT_APP, tmp_path / f"app-{version}")
    api = app / "apps/api/app/api.py"
    api.write_text(api.read_text() + f'\n\n@app.get("/api/version")\ndef version():\n    return {{"version": {version}}}\n')
    if big:  # a large file, so that the upload takes long enough to be interrupted
        (app / "apps/web/large.bin").write_bytes(os.urandom(64 * 1024 * 1024))
    return app


def test_two_deploys_at_once_then_a_killed_upload(variant_deployed, variant_server, variant_settings, variant_ca,
                                                  tmp_path):
    first_app, second_app = versioned(tmp_path, 10), versioned(tmp_path, 11)
    actions_before = len(audit_log(variant_server))

    first = Deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(first_app)}, "ana@laptop")
    first.wait_for("Took the deploy lock")
    second = Deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(second_app)}, "bo@desk")
    code, output = second.finish()
    first_code, first_output = first.finish()
    assert code != 0, f"the second deploy ran too:\n{output[-3000:]}\n--- the first ---\n{first_output[-3000:]}"
    assert "deploy in progress by ana@laptop since" in output, output[-3000:]
    assert first_code == 0, first_output[-3000:]
    assert lock_is_free(variant_server)
    assert harness.https_get(variant_server, "/api/version", variant_ca).json() == {"version": 10}
    _, current = variant_server.exec("cat /var/lib/srq-hpn/releases/current")
    assert current.strip() == Upload.of(first_app).revision

    # A deploy killed while it ships a large source.
    killed = Deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(versioned(tmp_path, 12, big=True))},
                    "ana@laptop")
    killed.wait_for("Shipping source")
    killed.kill()
    assert harness.https_get(variant_server, "/api/version", variant_ca).json() == {"version": 10}
    assert not lock_is_free(variant_server), "a killed run leaves its lock"

    refused = harness.run_pyinfra(variant_server.inventory(**{**variant_settings, "srq_hpn_app_local_path": str(second_app)}),
                                  "deploy.py", "-y", env={**VARIANT_ENV, "SRQ_HPN_OPERATOR": "bo@desk"})
    assert refused.returncode != 0
    assert "deploy in progress by ana@laptop since" in refused.output
    assert "--data srq_hpn_break_lock=true" in refused.output

    deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(second_app), "srq_hpn_break_lock": True},
           env={**VARIANT_ENV, "SRQ_HPN_OPERATOR": "bo@desk"})
    assert harness.https_get(variant_server, "/api/version", variant_ca).json() == {"version": 11}
    state = fact(variant_server, variant_settings, "tasks.facts.UploadedSource",
                 f"manifest_sha={Upload.of(second_app).manifest_sha}")
    assert state == "current"  # every file on disk is the new upload's
    assert variant_server.exec("test -e /opt/srq-hpn/apps/web/large.bin", check=False)[0] != 0

    actions = [(line["action"], line["operator"], line["result"].split(":")[0])
               for line in audit_log(variant_server)[actions_before:]]
    assert actions == [
        ("deploy", "ana@laptop", "ok"),          # the first of the pair (the second never held the lock)
        ("lock-break", "bo@desk", "lock broken"),
        ("deploy", "bo@desk", "ok"),
    ], actions


def test_rollback_across_a_migration_is_refused_unless_the_data_goes_back_too(
        variant_deployed, variant_server, variant_settings, variant_ca, tmp_path):
    app = versioned(tmp_path, 20)
    (app / "apps/api/migrations/versions/5b6c7d8e9f00_note_pinned.py").write_text(
        '"""notes can be pinned"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
        'revision = "5b6c7d8e9f00"\ndown_revision = "3f2a1b9c0d11"\n\n\n'
        'def upgrade():\n    op.add_column("notes", sa.Column("pinned", sa.Boolean(), nullable=True))\n\n\n'
        'def downgrade():\n    op.drop_column("notes", "pinned")\n')
    deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(app)}, env=VARIANT_ENV)
    run = harness.run_pyinfra(variant_server.inventory(**variant_settings), "rollback.py", "-y", env=VARIANT_ENV)
    assert run.returncode != 0
    assert "rollback refused" in run.output
    assert "knows migrations up to 3f2a1b9c0d11, but the database is at 5b6c7d8e9f00" in run.output
    assert "nothing was changed" in run.output
    assert "--data rollback_restore_backup=true" in run.output
    assert harness.https_get(variant_server, "/api/version", variant_ca).json() == {"version": 20}
    assert lock_is_free(variant_server)

    # With the data as it was at that release's schema: the backup taken before the migration.
    unconfirmed = harness.run_pyinfra(variant_server.inventory(**variant_settings, rollback_restore_backup=True),
                                      "rollback.py", "-y", env=VARIANT_ENV)
    assert unconfirmed.returncode != 0 and "Add --data restore_confirm=srq-hpn.test" in unconfirmed.output
    back = harness.run_pyinfra(
        variant_server.inventory(**variant_settings, rollback_restore_backup=True, restore_confirm="srq-hpn.test"),
        "rollback.py", "-y", env=VARIANT_ENV)
    assert back.returncode == 0, back.describe()
    assert "pre-migration-3f2a1b9c0d11-to-5b6c7d8e9f00" in back.output  # the backup it restored
    assert harness.https_get(variant_server, "/api/version", variant_ca).json() == {"version": 11}
    _, columns = variant_server.exec("docker exec srq-hpn-db psql -U srq_hpn srq_hpn -tAc "
                                     "\"SELECT column_name FROM information_schema.columns WHERE table_name = 'notes'\"")
    assert "pinned" not in columns.split()
    assert audit_log(variant_server)[-1]["action"] == "rollback"
