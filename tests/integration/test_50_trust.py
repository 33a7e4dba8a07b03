"""Scenario 50: what an operator trusts the deploy with, on a deployed server.

- The app's repository cannot choose what the operator's environment gives away: a
  compose file asking for a variable the operator exported for another reason, but did
  not declare, is refused before any change, and the value reaches neither the server's
  env file nor a container, nor the output.
- A setting that is accepted takes effect everywhere it is read: `backup_dir` is where
  the timer's backups land, where the drill and the Backups fact look, and what the
  checklist judges.
- The server programs are replaced by new files renamed into place, never rewritten in
  place (bash reads a running script as it goes)."""

from __future__ import annotations

from tests.integration.helpers import (
    APP_DIR,
    app_copy,
    assert_no_traceback,
    backups,
    checklist,
    deploy,
    fact,
    run_command,
    take_backup,
)
from tests.testbed import harness

LEAKED = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_an_exported_variable_the_operator_did_not_declare_never_reaches_the_server(deployed, server, testbed,
                                                                                     tmp_path):
    app = app_copy(harness.SAMPLE_APP, tmp_path / "app")
    compose = (app / "compose.yml").read_text()
    asking = compose.replace("      DATABASE_URL_ADMIN:", "      TELEMETRY_TOKEN: ${AWS_SECRET_ACCESS_KEY}\n"
                             "      DATABASE_URL_ADMIN:", 1)
    assert asking != compose
    (app / "compose.yml").write_text(asking)
    _, api_before = server.exec("docker inspect --format '{{.Id}}' srq-hpn-api")

    run = harness.run_pyinfra(server.inventory(**testbed.settings(srq_hpn_app_local_path=str(app))),
                              "deploy.py", "-y", "-vvv", env={"AWS_SECRET_ACCESS_KEY": LEAKED})

    assert run.returncode != 0, run.describe()
    assert_no_traceback(run)
    assert ("AWS_SECRET_ACCESS_KEY (asked for by compose.yml (api)) has no value: set it in app_env for a plain "
            "value (--data or group_data), or declare it in app_secrets and export AWS_SECRET_ACCESS_KEY=... before "
            "running pyinfra for a secret. AWS_SECRET_ACCESS_KEY is exported in your environment, but the deploy "
            "never copies a variable you did not declare: it was not given to the app") in run.output, run.describe()
    assert "nothing on the server was changed" in run.output
    assert LEAKED not in run.output
    _, found = server.exec(f"grep -rl -F -e {LEAKED!r} {APP_DIR} /var/lib/srq-hpn /etc/srq-hpn || true")
    assert found.strip() == "", f"the value reached the server: {found}"
    _, environment = server.exec("docker inspect --format '{{json .Config.Env}}' srq-hpn-api")
    assert LEAKED not in environment and "TELEMETRY_TOKEN" not in environment
    _, api_after = server.exec("docker inspect --format '{{.Id}}' srq-hpn-api")
    assert api_after == api_before  # nothing was replaced


def test_the_backup_directory_setting_takes_effect_everywhere_it_is_read(deployed, server, testbed):
    moved = "/srv/srq-backups"
    settings = testbed.settings(backup_dir=moved)
    try:
        deploy(server, settings)
        assert server.exec(f"stat -c '%a %U' {moved}")[1].strip() == "700 root"

        name = take_backup(server, moved)  # the timer's own unit

        assert name not in backups(server)  # not in the default directory
        listed = fact(server, settings, "tasks.facts.Backups")
        assert listed["dir"] == moved and listed["newest"] == name
        drill = run_command(server, settings, "drill.py", f"drill_backup={name}")
        assert drill.returncode == 0, drill.describe()
        assert f"Restore drill of {name}" in drill.output and "PASSED" in drill.output
        items = checklist(server, settings)
        assert f"newest backup {name}" in items.evidence("backups"), items.evidence("backups")
    finally:
        deploy(server, testbed.settings())
        server.exec(f"rm -rf {moved}")


def test_the_server_programs_are_replaced_by_new_files_never_rewritten_in_place(deployed, server, testbed):
    program = "/usr/local/lib/srq-hpn/srq-hpn-check"
    _, original = server.exec(f"sha256sum {program}")
    server.exec(f"echo '# changed on the server' >> {program}")
    _, inode_before = server.exec(f"stat -c %i {program}")
    # A reader that holds the file open (as bash does while it runs a script) keeps
    # reading the text it started with.
    server.exec(f"sh -c 'exec 3<{program}; sleep 120' >/dev/null 2>&1 & echo $! > /tmp/srq-hpn-reader.pid")
    try:
        deploy(server, testbed.settings())
        _, now = server.exec(f"sha256sum {program}")
        assert now == original  # the deploy's own text again
        _, inode_after = server.exec(f"stat -c %i {program}")
        assert inode_after != inode_before, "the program was rewritten in place"
        _, held = server.exec("cat /proc/$(cat /tmp/srq-hpn-reader.pid)/fdinfo/3 >/dev/null && "
                              "tail -n 1 /proc/$(cat /tmp/srq-hpn-reader.pid)/fd/3")
        assert held.strip() == "# changed on the server"  # the running reader's file is untouched
    finally:
        server.exec("kill $(cat /tmp/srq-hpn-reader.pid) 2>/dev/null; rm -f /tmp/srq-hpn-reader.pid", check=False)
    assert deploy(server, testbed.settings()).changed_operations() == []
