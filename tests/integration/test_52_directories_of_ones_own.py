"""Scenario 52, on a server of its own: the app, state and backup directories moved by
their settings take effect everywhere they are read: the deploy, the backups, the drill,
the checklist, and the facts an operator asks by hand (which read the server's own
configuration, not this repository's defaults)."""

from __future__ import annotations

from tests.integration.helpers import assert_stack_is_up, backups, checklist, deploy, fact, run_command, take_backup

APP_DIR, STATE_DIR, BACKUP_DIR = "/srv/shop", "/var/lib/shop-deploy", "/srv/shop-backups"


def test_moved_directories_are_used_everywhere(fresh_server, testbed):
    server = fresh_server("directories")
    settings = testbed.settings(srq_hpn_app_dir=APP_DIR, srq_hpn_state_dir=STATE_DIR, backup_dir=BACKUP_DIR)

    deploy(server, settings)

    assert_stack_is_up(server)
    for default in ("/opt/srq-hpn", "/var/lib/srq-hpn", "/var/backups/srq-hpn"):
        assert server.exec(f"test -e {default}", check=False)[0] != 0, f"{default} was created"
    _, env = server.exec(f"stat -c '%a %U' {APP_DIR}/.env.production")
    assert env.strip() == "600 root"
    name = take_backup(server, BACKUP_DIR)
    assert name in backups(server, BACKUP_DIR)

    # The facts an operator asks by hand, with no argument: the server's own directories.
    assert set(fact(server, settings, "tasks.facts.StackContainers")) >= {"db", "api", "web", "caddy"}
    releases = fact(server, settings, "tasks.facts.Releases")
    assert releases["current"] and releases["current"] == releases["releases"][-1]["release"]
    assert fact(server, settings, "tasks.facts.AuditLog")[-1]["result"] == "ok"
    assert fact(server, settings, "tasks.facts.DeployLock") is None
    state = fact(server, settings, "tasks.facts.MigrationState")
    assert state["ok"] and state["at_head"], state
    assert fact(server, settings, "tasks.facts.DatabaseRevision")["revisions"] == state["current"]
    assert fact(server, settings, "tasks.facts.Backups")["newest"] == name
    assert set(fact(server, settings, "tasks.facts.SecretsRecord")) == {"POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD"}

    drill = run_command(server, settings, "drill.py")
    assert drill.returncode == 0, drill.describe()
    assert fact(server, settings, "tasks.facts.LastDrill")["backup"] == name
    _, records = server.exec(f"ls {STATE_DIR}/drills")
    assert "last.json" in records

    items = checklist(server, settings)
    assert items.run.returncode == 0, items.run.describe()
    assert items.statuses["programs"] == "pass", items.evidence("programs")
    assert items.statuses["backups"] == "pass" and name in items.evidence("backups")
    assert items.statuses["restore_drill"] == "pass"
    assert items.statuses["env_file"] == "pass" and APP_DIR in items.evidence("env_file")

    assert deploy(server, settings).changed_operations() == []
    # The checklist says when the server's configuration is not the one these settings make.
    other = checklist(server, {**settings, "backup_keep_daily": 3})
    assert other.statuses["programs"] == "warn" and "differs from what your settings make" in other.evidence("programs")
