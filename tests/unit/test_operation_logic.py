"""Decisions the operations make from facts, and the bookkeeping commands (pure parts;
the lock command is run for real with bash)."""

import json
import subprocess

from tasks.facts import (
    AuditLog,
    DeployLock,
    MaintenancePage,
    MigrationState,
    Releases,
    StackContainers,
    StackHealth,
    UploadedSource,
)
from tasks.layout import Paths
from tasks.operations.release import audit_command, held_message, lock_command, prune_plan
from tasks.operations.services import failed_checks
from tasks.plan import Migration, builds_of, migration_of, rollout_of, stale_services


def running(hash_="h1", image_current=True):
    return {"state": "running", "health": "healthy", "config_hash": hash_, "expected_hash": "h1",
            "image_current": image_current}


def test_stale_services():
    containers = {"db": running(), "api": running("old"), "web": running(image_current=False),
                  "caddy": {"state": "exited", "exit_code": 0, "config_hash": "h1", "expected_hash": "h1"},
                  "seed": {**running(), "state": "exited", "exit_code": 0},
                  "job": {**running(), "state": "exited", "exit_code": 3}}
    hashes = {name: info.get("expected_hash", "") for name, info in containers.items()}
    assert stale_services(containers, hashes, ["db"]) == {}
    assert stale_services(containers, hashes, ["db", "api", "web", "caddy", "x", "seed", "job"],
                          {"api": ["POSTGRES_APP_PASSWORD"]}) == {
        "api": "POSTGRES_APP_PASSWORD changed", "web": "its image changed", "caddy": "exited",
        "x": "not created yet", "job": "exited"}  # a job of the app's own that finished well is done


def test_the_rollout_is_decided_once_upstreams_swapped_caddy_last():
    running_ = {"state": "running"}
    containers = {"api": running_, "web": running_, "caddy": running_, "worker": running_}
    stale = {"caddy": "x", "worker": "x", "web": "release r2", "api": "release r2", "beat": "not created yet"}
    rollout, reload = rollout_of(stale, containers, reload_caddy=True)
    assert (rollout.swap, rollout.up, rollout.last) == (("api", "web"), ("beat", "worker"), ("caddy",))
    assert reload is False  # Caddy is recreated anyway
    assert rollout.arguments() == ["--swap", "api", "--swap", "web", "--up", "beat", "--up", "worker",
                                   "--last", "caddy"]
    # A first deploy: nothing runs; every service is brought up, Caddy with them, upstreams first.
    first, _ = rollout_of({s: "not created yet" for s in ("caddy", "web", "api", "worker")}, {}, False)
    assert (first.swap, first.up, first.last) == ((), ("api", "web", "caddy", "worker"), ())
    only_caddyfile, reload = rollout_of({}, containers, reload_caddy=True)
    assert only_caddyfile.services == () and reload is True


def test_stack_containers_fact_parsing():
    output = [
        "expected db abc",
        "expected api def",
        "expected worker ghi",
        "container db /srq-hpn-db running 0 healthy 2026-01-01T00:00:00Z sha256:1 postgres:16 json-file abc",
        "container api /srq-hpn-api running 0 starting 2026-01-01T00:00:01Z sha256:2 srq-hpn-api:r1 journald old",
        "image postgres:16 sha256:1",
        "image srq-hpn-api:r1 sha256:3",
    ]
    result = StackContainers().process(output)
    assert result["db"]["name"] == "srq-hpn-db" and result["db"]["image_current"] is True
    assert result["db"]["config_hash"] == result["db"]["expected_hash"] == "abc"
    assert result["api"]["image_current"] is False and result["api"]["health"] == "starting"
    assert (result["db"]["log_driver"], result["api"]["log_driver"]) == ("json-file", "journald")
    assert result["worker"] == {"state": "missing", "expected_hash": "ghi"}
    hashes = {name: info["expected_hash"] for name, info in result.items()}
    assert stale_services(result, hashes, ["db", "api", "worker"]) == {
        "api": "its configuration changed", "worker": "not created yet"}
    assert "com.docker.compose.oneoff=False" in StackContainers().command()


def test_failed_checks_name_the_check_and_the_answer():
    good = {
        "/": {"status": 200, "body": "<html>"},
        "/api/health": {"status": 200, "body": '{"ok":true,"service":"api"}'},
        "/api/db-health": {"status": 200, "body": '{"db_ok":true,"now":"2026"}'},
        "http-redirect": {"status": 308, "body": "https://example.com/"},
    }
    assert failed_checks(good, "example.com") == []
    bad = {**good, "/api/db-health": {"status": 503, "body": '{"db_ok":false}'}}
    assert failed_checks(bad, "example.com") == [
        "https://example.com/api/db-health answered 503 '{\"db_ok\":false}' (wanted db_ok: true)"]
    assert len(failed_checks({}, "example.com")) == 4


def test_stack_health_parsing():
    parsed = StackHealth().process(["check /api/health 200 {\"ok\":true,\"service\":\"api\"}", "check / 000 curl: (7) refused"])
    assert parsed["/api/health"] == {"status": 200, "body": '{"ok":true,"service":"api"}'}
    assert parsed["/"] == {"status": 0, "body": "curl: (7) refused"}


def test_maintenance_page_fact():
    fact = MaintenancePage()
    assert "srq-hpn-maintenance status" in fact.command() and "echo off" in fact.command()  # off before a deploy
    assert fact.process(["on"]) is True
    assert fact.process(["off"]) is False and fact.process([]) is False


def test_migration_state():
    fact = MigrationState()
    assert fact.process(["ok", "0002 (head)", "@@heads", "0002 (head)"]) == {
        "ok": True, "current": ["0002"], "heads": ["0002"], "at_head": True}
    behind = fact.process(["ok", "0001", "@@heads", "0002 (head)"])
    assert behind["at_head"] is False and behind["current"] == ["0001"]
    assert fact.process(["ok", "@@heads", "0002 (head)"])["current"] == []  # an empty database
    failed = fact.process(["error", "ModuleNotFoundError: No module named 'psycopg2'"])
    assert failed["ok"] is False and failed["error"] == ["ModuleNotFoundError: No module named 'psycopg2'"]
    # alembic's own words are kept for the operator (what precedes it only finds the app directory)
    assert "2>/dev/null" not in fact.command().split("; ", 1)[1]


def test_uploaded_source_fact_answers_on_a_missing_record():
    assert UploadedSource().process(["stale: nothing uploaded yet"]) == "stale: nothing uploaded yet"
    assert UploadedSource().process([]) == "stale: no answer"


def test_release_facts_parsing():
    lock = DeployLock().process(['{"operator": "ana@laptop", "since": "t"}'])
    assert lock["operator"] == "ana@laptop"
    assert DeployLock().process([]) is None
    assert AuditLog().process(['{"action": "deploy"}', "garbage"]) == [{"action": "deploy"}]
    releases = Releases().process([
        "current r2",
        'release yes {"release": "r2", "created": "2026-02"}',
        'release no {"release": "r1", "created": "2026-01"}',
    ])
    assert releases["current"] == "r2"
    assert [(r["release"], r["images_present"]) for r in releases["releases"]] == [("r1", False), ("r2", True)]


def test_prune_plan_keeps_the_newest_and_the_current():
    releases = [{"release": f"r{i}", "created": f"2026-0{i}"} for i in range(1, 7)]
    assert [r["release"] for r, _ in prune_plan(releases, "r6", 5)] == ["r1"]
    assert [r["release"] for r, _ in prune_plan(releases, "r1", 2)] == ["r2", "r3", "r4"]


def test_prune_plan_keeps_an_image_a_kept_release_shares():
    releases = [{"release": "r1", "created": "1", "images": {"api": "p-api:a1", "web": "p-web:w1"}},
                {"release": "r2", "created": "2", "images": {"api": "p-api:a2", "web": "p-web:w1"}}]
    assert prune_plan(releases, "r2", 1) == [(releases[0], ["p-api:a1"])]  # web's image is r2's too


def test_lock_command_takes_refuses_and_breaks(tmp_path):
    paths = Paths(app_dir="/opt/x", state_dir=str(tmp_path / "state"))

    def take(holder, timeout=0, break_lock=False):
        done = subprocess.run(["sh", "-c", lock_command(paths, holder, timeout, break_lock)],  # POSIX sh, as on servers
                              capture_output=True, text=True, check=True)
        return done.stdout.splitlines()

    assert take({"operator": "ana"}) == ["generation 0", "acquired"]
    held = take({"operator": "bo"})
    assert len(held) == 1 and held[0].startswith("held ") and json.loads(held[0][5:]) == {"operator": "ana"}
    assert "deploy in progress by ana since ?" in held_message(held[0][5:], "deploy")
    assert "--data srq_hpn_break_lock=true" in held_message(held[0][5:], "deploy")
    broken = take({"operator": "bo"}, break_lock=True)
    assert broken == ['broken {"operator": "ana"}', "generation 1", "acquired"]  # runs are counted


def test_audit_command_appends_one_json_line(tmp_path):
    paths = Paths(app_dir="/opt/x", state_dir=str(tmp_path / "state"))
    for n in (1, 2):
        subprocess.run(["bash", "-c", audit_command(paths, {"action": "deploy", "n": n, "note": "it's"})], check=True)
    lines = (tmp_path / "state" / "audit.log").read_text().splitlines()
    assert [json.loads(line)["n"] for line in lines] == [1, 2]


def test_rollback_target_is_the_release_before_the_current_one():
    from tasks.rollback import target_release

    releases = {
        "current": "r3",
        "history": ["r1", "r2", "r3", "r2", "r3"],
        "releases": [{"release": r, "images_present": r != "r0", "created": c}
                     for r, c in (("r0", "0"), ("r1", "1"), ("r2", "2"), ("r3", "3"))],
    }
    assert target_release(releases, None)[0]["release"] == "r2"
    assert target_release(releases, "r1")[0]["release"] == "r1"
    assert target_release(releases, "r3") == (None, "release r3 is already the one running")
    assert target_release(releases, "r9") == (None, "no release 'r9' on the server (kept: r0, r1, r2, r3)")
    assert "images of release r0 are gone" in target_release(releases, "r0")[1]
    alone = {"current": "r1", "history": ["r1"], "releases": [{"release": "r1", "images_present": True}]}
    assert target_release(alone, None)[1] == "no earlier release to go back to (current: r1; kept: r1)"


def test_rollback_refuses_a_database_migrated_past_the_release():
    from tasks.rollback import migration_problem

    target = {"release": "r2", "migration_heads": ["0002"]}
    assert migration_problem(target, ["0002"]) is None
    assert "knows migrations up to 0002, but the database is at 0003" in migration_problem(target, ["0003"])
    assert "does not answer" in migration_problem(target, None)


def test_the_migration_is_read_from_the_database_and_the_releases_scripts():
    from tasks.facts import DatabaseRevision

    live = DatabaseRevision().process(["tables 2", "revision 0002"])
    assert live == {"revisions": ["0002"], "tables": 2}
    assert DatabaseRevision().process([]) is None  # the database did not answer
    assert migration_of(live, ["0002"], True).pending is False
    behind = migration_of(live, ["0003"], True)
    assert behind.pending and behind.has_data and behind.label == "pre-migration-0002-to-0003"
    assert behind.words() == "migrate 0002 -> 0003, after a backup pre-migration-0002-to-0003"
    empty = migration_of({"revisions": [], "tables": 0}, ["0002"], False)
    assert empty.pending and not empty.has_data and empty.words() == "migrate an empty database -> 0002"
    assert migration_of({"revisions": [], "tables": 4}, ["0002"], True).has_data  # data without alembic
    unknown = migration_of(None, ["0002"], True)  # the database does not answer yet: migrate, after a backup
    assert unknown.pending and unknown.has_data
    assert Migration(("0002",), None, True).pending  # the scripts cannot be read: alembic tells


def test_images_to_build_and_to_pull():
    from tasks.facts import ImageLabels
    from tasks.operations.release import wanted_images

    config = {"name": "srq-hpn", "services": {"api": {"build": {}}, "worker": {"build": {}},
                                              "db": {"image": "postgres:16"}, "caddy": {"image": "caddy:2"}}}
    own, pulled = wanted_images(config, ["api", "worker"], {"api": "r1", "worker": "r1"})
    assert own == {"api": "srq-hpn-api:r1", "worker": "srq-hpn-worker:r1"}
    assert pulled == ["caddy:2", "postgres:16"]
    labels = ImageLabels().process(["id srq-hpn-api:r1 sha256:1", "id srq-hpn-worker:r1 sha256:2",
                                    "id postgres:16 sha256:3", "missing caddy:2",
                                    "label sha256:1 d1", "label sha256:2 old", "label sha256:3 <no value>"])
    assert labels == {"srq-hpn-api:r1": "d1", "srq-hpn-worker:r1": "old", "postgres:16": "", "caddy:2": None}
    assert builds_of(labels, own, pulled, {"api": "d1", "worker": "d1"}) == (["worker"], ["caddy:2"])


def test_the_backup_to_restore_for_a_rollback_is_the_newest_at_the_releases_schema():
    from tasks.rollback import backup_at

    backups = [
        {"name": "b1", "time": "2026-01-01T00:00:00Z", "revision": ["0002"], "verified": True},
        {"name": "b2", "time": "2026-01-02T00:00:00Z", "revision": ["0002"], "verified": True},
        {"name": "b3", "time": "2026-01-03T00:00:00Z", "revision": ["0002"], "verified": False},
        {"name": "b4", "time": "2026-01-04T00:00:00Z", "revision": ["0003"], "verified": True},
    ]
    assert backup_at({"migration_heads": ["0002"]}, backups)["name"] == "b2"
    assert backup_at({"migration_heads": ["0001"]}, backups) is None
    assert backup_at({"migration_heads": []}, backups) is None


def test_a_failure_the_deploy_explained_ends_with_its_last_words(monkeypatch):
    """Not pyinfra's "No hosts remaining!": each failed host's last words, when every one was explained."""
    import sys
    import types

    from pyinfra.api.exceptions import PyinfraError

    from tasks import remote

    class Stopped(Exception):
        def __init__(self, words):
            self.words = words

    monkeypatch.setitem(sys.modules, "tasks.refusal", types.SimpleNamespace(StoppedExplained=Stopped))

    class Host:
        def __init__(self, name):
            self.name = name

    class State:
        def __init__(self):
            self.failed_hosts = set()

        def fail_hosts(self, hosts, activated_count=None):
            self.failed_hosts.update(hosts)
            raise PyinfraError("No hosts remaining!")

    one, two = Host("web-1"), Host("web-2")
    state = State()
    remote.explained(state, one, "no certificate for example.com: ...; then deploy again")
    try:
        state.fail_hosts({one})
    except Stopped as stopped:
        assert stopped.words == {"web-1": "no certificate for example.com: ...; then deploy again"}
    else:
        raise AssertionError("the run did not end with its last words")
    state = State()  # a host that failed without an explanation keeps pyinfra's own words
    remote.explained(state, one, "explained")
    try:
        state.fail_hosts({one, two})
    except PyinfraError as error:
        assert str(error) == "No hosts remaining!"
