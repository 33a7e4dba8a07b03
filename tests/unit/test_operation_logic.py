"""Decisions the operations make from facts (pure parts)."""

from tasks.facts import MigrationState, StackContainers, StackHealth
from tasks.operations import failed_checks, stale_services
from tasks.secrets import SOURCES, choose


def running(hash_="h1", image_current=True):
    return {"state": "running", "health": "healthy", "config_hash": hash_, "expected_hash": "h1",
            "image_current": image_current}


def test_stale_services():
    containers = {"db": running(), "api": running("old"), "web": running(image_current=False),
                  "caddy": {"state": "exited", "config_hash": "h1", "expected_hash": "h1"}}
    assert stale_services(containers, ["db"]) == {}
    assert stale_services(containers, ["db", "api", "web", "caddy", "x"]) == {
        "api": "configuration changed", "web": "image changed", "caddy": "exited", "x": "not created"}


def test_stack_containers_fact_parsing():
    output = [
        "expected db abc",
        "expected api def",
        "container db /srq-hpn-db running healthy 2026-01-01T00:00:00Z sha256:1 postgres:16 abc",
        "container api /srq-hpn-api running starting 2026-01-01T00:00:01Z sha256:2 srq-hpn-api:latest old",
        "image postgres:16 sha256:1",
        "image srq-hpn-api:latest sha256:3",
    ]
    result = StackContainers().process(output)
    assert result["db"]["name"] == "srq-hpn-db" and result["db"]["image_current"] is True
    assert result["db"]["config_hash"] == result["db"]["expected_hash"] == "abc"
    assert result["api"]["image_current"] is False and result["api"]["health"] == "starting"
    assert stale_services(result, ["db", "api"]) == {"api": "configuration changed"}


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


def test_migration_state():
    assert MigrationState().process(["0002 (head)"]) == {"current": ["0002 (head)"], "at_head": True}
    assert MigrationState().process(["0001"])["at_head"] is False
    assert MigrationState().process([])["at_head"] is False


def test_password_sources_in_order():
    assert choose("P", {"P": "env"}, {"P": "server"}) == ("env", SOURCES[0])
    assert choose("P", {}, {"P": "server"}) == ("server", SOURCES[1])
    value, source = choose("P", {}, {})
    assert source == SOURCES[2] and len(value) == 44


def test_build_digest_follows_build_inputs_only(settings):
    from dataclasses import replace

    from tasks.app import build_digest

    assert build_digest(replace(settings, caddy_image="caddy:2.8", postgres_image="postgres:16.4")) == build_digest(settings)
    assert build_digest(replace(settings, api_base_image="python:3.13-slim")) != build_digest(settings)
    assert build_digest(replace(settings, web_path="apps/frontend")) != build_digest(settings)
