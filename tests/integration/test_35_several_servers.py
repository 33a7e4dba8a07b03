"""Scenario 35: several servers. A managed database's stand-in (TLS, an admin without
SUPERUSER), two app servers (inventory group `app`) and an edge (group `edge`) on one
private network; every request of the scenario goes through the edge's published 443.

One group for the module, in order: a fresh deploy, a second run, an update with a
migration under load, two deploys at once, a version that never gets healthy, and an app
server that stops.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time

import pytest

from tasks import layout
from tests.integration.helpers import ADD_NOTE_MIGRATION, app_copy, app_role_problems, audit_log, containers, \
    lock_is_free, start_times, wait_until
from tests.testbed import harness
from tests.testbed.load import RequestLoop

PATHS = ("/api/health", "/", "/api/db-health")
APPS = ("app1", "app2")


class Group:
    """The group's servers, the database, and how to deploy them as an operator would."""

    def __init__(self, testbed, managed, app1, app2, edge):
        self.testbed, self.managed = testbed, managed
        # The app role's password, shared by the app servers: the operator's, as the admin's.
        self.env = {**managed.env(), "POSTGRES_APP_PASSWORD": secrets.token_urlsafe(32)}
        self.servers = {"app1": app1, "app2": app2, "edge": edge}
        self.ca = None

    def inventory(self, app=harness.SAMPLE_APP, **overrides) -> dict:
        common = self.testbed.settings(app, **self.managed.settings(), **overrides)
        return {
            "app": [self.servers[name].named_entry(name, **common,
                                                   srq_hpn_private_address=self.servers[name].address())
                    for name in APPS],
            "edge": [self.servers["edge"].named_entry("edge", **self.testbed.settings(**overrides))],
        }

    def deploy(self, app=harness.SAMPLE_APP, *args, operator="operator", expect_ok=True, **overrides):
        """The deploy as an operator runs it (-y; with --dry, without it: pyinfra then asks each
        operation whether it changes anything)."""
        confirm = () if "--dry" in args else ("-y",)
        run = harness.run_pyinfra(self.inventory(app, **overrides), "deploy.py", *confirm, "--json", *args,
                                  env={**self.env, "SRQ_HPN_OPERATOR": operator})
        if expect_ok:
            assert run.returncode == 0, run.describe()
        else:
            assert run.returncode != 0, f"the deploy succeeded:\n{run.describe()}"
            assert "site-packages/pyinfra" not in run.output and "An internal exception" not in run.output
        return run

    def api_image(self, name: str) -> str:
        _code, image = self.servers[name].exec("docker inspect --format '{{.Config.Image}}' srq-hpn-api")
        return image.strip()

    def release(self, name: str) -> str:
        _code, current = self.servers[name].exec(f"cat {layout.STATE_DIR}/releases/current")
        return current.strip()

    def get(self, path: str):
        return harness.https_get(self.servers["edge"], path, self.ca)


@pytest.fixture(scope="module")
def grp(testbed):
    managed = testbed.start_managed_db("managed-35")
    servers = [testbed.start_server(name) for name in ("group-app1", "group-app2", "group-edge")]
    group = Group(testbed, managed, *servers)
    try:
        run = group.deploy()
        group.ca = harness.caddy_root_ca(servers[2], testbed.workdir / "edge-ca.crt", layout.EDGE_CONTAINER)
        group.first_run = run
        yield group
    finally:
        for server in servers:
            server.remove()
        managed.remove()


def with_version(tmp_path, version: int, migration: bool = False):
    app = app_copy(harness.SAMPLE_APP, tmp_path / f"app-{version}")
    main = app / "apps/api/app/main.py"
    main.write_text(main.read_text() + f'\n\n@app.get("/api/version")\ndef version():\n    return {{"version": {version}}}\n')
    if migration:
        (app / "apps/api/alembic/versions/0003_add_note.py").write_text(ADD_NOTE_MIGRATION)
    return app


def migration_history(server) -> list[dict]:
    _code, text = server.exec(f"cat {layout.STATE_DIR}/migrations/history.jsonl 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def listening(server) -> list[str]:
    _code, out = server.exec("ss -Hltn")
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def test_a_fresh_group_serves_through_the_edge_on_the_managed_database(grp):
    response = grp.get("/api/db-health")
    assert response.status == 200, response
    assert grp.get("/").status == 200
    assert app_role_problems(grp.managed) == []
    for name in APPS:
        server = grp.servers[name]
        services = {info["service"] for info in containers(server).values()}
        assert services >= {layout.API, layout.WEB, layout.CADDY} and layout.DB not in services, services
        ports = listening(server)
        assert f"{server.address()}:80" in ports, ports
        public = [port for port in ports if port.rsplit(":", 1)[1] in ("80", "443", "3000", "8000", "5432")
                  and not port.startswith((server.address() + ":", "127.0.0.1:", "[::1]:", "127.0.0.11:"))]
        assert public == [], f"{name} listens publicly on {public}"
    edge_services = {info["service"] for info in containers(grp.servers["edge"]).values()}
    assert edge_services == {layout.CADDY}, edge_services
    # The scheduled backups of the shared database run on the first app server only.
    states = {name: grp.servers[name].exec(f"systemctl is-active {layout.BACKUP_TIMER}", check=False)[1].strip()
              for name in APPS}
    assert states == {"app1": "active", "app2": "inactive"}, states


def test_the_checklist_judges_each_server_by_its_role(grp):
    run = harness.run_pyinfra(grp.inventory(), "checklist.py", "-y", env=grp.env)
    items: dict[str, dict[str, tuple[str, str]]] = {}
    for line in run.stderr.splitlines():
        found = re.match(r"^\s*\[([^\]]+)\]\s+(pass|warn|fail|cannot-check|n/a)\s+(.+?) \[(\w+)\]: (.*)$", line)
        if found:
            name, status, _title, key, evidence = found.groups()
            items.setdefault(name, {})[key] = (status, evidence)
    assert sorted(items) == ["app1", "app2", "edge"], run.describe()
    failed = {name: [key for key, (status, _) in found.items() if status == "fail"] for name, found in items.items()}
    assert failed == {"app1": [], "app2": [], "edge": []}, (failed, run.describe())
    for name in APPS:
        for key in ("db_port", "https", "http_redirect", "wal_archive"):
            assert items[name][key][0] == "n/a", (name, key, items[name][key])
    assert items["app1"]["backups"][0] != "n/a" and items["app2"]["backups"] == (
        "n/a", "the group's shared database is backed up, and its backups drilled, on app1")
    assert items["app1"]["app_role"][0] == "pass" and items["app2"]["app_role"][0] == "pass"
    for key in ("passwords", "env_file", "migrations", "app_role", "backups", "containers"):
        assert items["edge"][key][0] == "n/a", (key, items["edge"][key])
    for key in ("https", "http_redirect", "caddy", "domain", "app_ports"):
        assert items["edge"][key][0] == "pass", (key, items["edge"][key])


def test_a_second_run_of_the_group_changes_nothing(grp):
    before = {name: start_times(server) for name, server in grp.servers.items()}
    run = grp.deploy()
    assert run.changed_operations() == [], f"operations that changed on the second run: {run.changed_operations()}"
    assert {name: start_times(server) for name, server in grp.servers.items()} == before


def test_an_update_with_a_migration_runs_it_once_and_swaps_one_server_at_a_time(grp, tmp_path):
    app = with_version(tmp_path, 3, migration=True)
    dry = grp.deploy(app, "--dry", "--diff", "-vvv")
    planned = sorted((op["op_hash"], name) for op in dry.json()["plan"] for name in op["hosts_with_change"])
    assert any("migrate 0002 -> 0003" in line for line in dry.output.splitlines() if "[app1] Plan:" in line)
    assert any("migrated once, by app1" in line for line in dry.output.splitlines() if "[app2] Plan:" in line)
    started = time.monotonic()
    with RequestLoop(grp.servers["edge"], grp.ca, PATHS, rate=40) as loop:
        run = grp.deploy(app)
        wait_until(lambda: loop.sent >= 1000, "1,000 requests through the edge", timeout=120)
    print(f"\nupdate with a migration across two app servers: {time.monotonic() - started:.0f}s, {loop.summary()}")
    changed = sorted((op["op_hash"], name) for op in run.results()["operations"] for name in op["success"])
    assert changed == planned, "--dry did not list what the run changed (operation, server)"
    secrets = [grp.managed.admin_password, grp.env["POSTGRES_APP_PASSWORD"]]
    for label, output in (("--dry --diff -vvv", dry.output), ("the update", run.output)):
        assert not [secret for secret in secrets if secret in output], f"{label} printed a password"
    assert loop.sent >= 1000 and loop.failed == 0, loop.summary()
    assert grp.managed.query("SELECT version_num FROM alembic_version") == [("0003",)]
    assert grp.get("/api/version").json() == {"version": 3}
    # Once: on the first app server, which alone has the migration's record and the backup before it.
    migrated = {name: [record for record in migration_history(grp.servers[name]) if record["to"] == "0003"]
                for name in APPS}
    assert [record["result"] for record in migrated["app1"]] == ["migrated"] and migrated["app2"] == [], migrated
    assert audit_log(grp.servers["app1"])[-1]["migration_after"] == ["0003"]
    assert run.output.count("Migrating") == 1, "the migration ran more than once"
    # One at a time, in the inventory's order: app2's swap began once app1's had ended.
    first, second = run.output.index("[app1] Bringing up"), run.output.index("[app2] Bringing up")
    assert first < second, "app2 was swapped before app1"
    assert "[app1] Success" in run.output[first:second], "app2's swap began before app1's ended"
    for name in APPS:
        assert grp.release(name) == grp.release("app1")


def test_two_deploys_of_the_group_at_once_one_refuses_before_any_server_changes(grp, tmp_path):
    app = with_version(tmp_path, 4, migration=True)
    lines_before = {name: len(audit_log(grp.servers[name])) for name in (*APPS, "edge")}
    results = {}

    def first():
        results["a"] = grp.deploy(app, operator="operator-a")

    thread = threading.Thread(target=first)
    thread.start()
    wait_until(lambda: not lock_is_free(grp.servers["app1"]), "operator-a's lock on app1", timeout=120)
    refused = grp.deploy(app, operator="operator-b", expect_ok=False)
    thread.join()
    assert "operator-a" in refused.output, refused.output[-3000:]
    assert "Not taking the deploy lock of app2" in refused.output, refused.output[-3000:]
    for name in (*APPS, "edge"):
        records = audit_log(grp.servers[name])[lines_before[name]:]
        assert [r for r in records if r["operator"] == "operator-b"] == [], f"{name}: operator-b left {records}"
        assert lock_is_free(grp.servers[name])
    assert grp.get("/api/version").json() == {"version": 4}


def test_a_version_that_never_gets_healthy_stops_the_rollout_on_the_first_server(grp, tmp_path):
    app = with_version(tmp_path, 5, migration=True)
    main = app / "apps/api/app/main.py"
    main.write_text(main.read_text().replace('    return {"ok": True, "service": "api"}',
                                             '    raise RuntimeError("this version never gets healthy")'))
    images = {name: grp.api_image(name) for name in APPS}
    releases = {name: grp.release(name) for name in APPS}
    with RequestLoop(grp.servers["edge"], grp.ca, PATHS) as loop:
        run = grp.deploy(app, expect_ok=False, srq_hpn_ready_timeout=15)
    assert loop.sent >= 100 and loop.failed == 0, loop.summary()
    assert "the new version of api did not become ready" in run.output
    assert "Not swapping app2" in run.output
    assert {name: grp.api_image(name) for name in APPS} == images, "a server runs the failed version"
    for name in APPS:
        assert f"Group: {name} runs release {releases[name]}" in run.output, run.output[-3000:]
        assert lock_is_free(grp.servers[name])
    assert grp.get("/api/version").json() == {"version": 4}


def edge_noticed(edge, address: str, since: float) -> float | None:
    """When the edge's active health checks first found the app server at ``address`` down, for
    both routes (/api/health and /), from its own log (epoch seconds), or None."""
    _code, out = edge.exec(f"docker logs --since {int(since) - 1} {layout.EDGE_CONTAINER} 2>&1")
    first: dict[str, float] = {}
    for line in out.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger", "").endswith("health_checker.active") and entry.get("host") == f"{address}:80" \
                and entry.get("ts", 0) >= since:
            uri = "/api/health" if "/api/health" in entry.get("error", "") else "/"
            first.setdefault(uri, entry["ts"])
    return max(first.values()) if len(first) == 2 else None


def test_the_edge_keeps_serving_when_an_app_server_stops(grp):
    app2, edge = grp.servers["app2"], grp.servers["edge"]
    address = app2.address()
    with RequestLoop(edge, grp.ca, PATHS) as loop:
        time.sleep(3)
        stopped_at = time.time()
        app2.container.stop(timeout=20)
        wait_until(lambda: edge_noticed(edge, address, stopped_at) is not None,
                   "the edge's health checks finding app2 down", timeout=60)
        noticed = edge_noticed(edge, address, stopped_at)
        time.sleep(20)  # then a steady stream through the edge with one app server
    after = [t for t in loop.failed_at if t > noticed]
    print(f"\napp2 stopped: the edge's health checks found it down {noticed - stopped_at:.1f}s after the stop "
          f"began; {loop.summary()}; failed before that: {len(loop.failed_at) - len(after)}")
    assert after == [], f"{len(after)} requests failed after the edge noticed; {loop.summary()}"
    assert loop.sent - len(loop.failed_at) >= 20 * 25, loop.summary()  # the loop went on
    assert grp.get("/api/db-health").status == 200
