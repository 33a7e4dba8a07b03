"""Ad-hoc facts: what an operator asks of a running server, with `pyinfra inventory.py fact`."""

from tasks import layout
from tests.integration import helpers
from tests.integration.helpers import containers, wait_until


def fact(server, testbed, name, *args):
    return helpers.fact(server, testbed.settings(), name, *args)


def test_stack_containers_fact(deployed, server, testbed):
    # Docker's own healthcheck may still say "starting" just after a deploy that swapped
    # the api (the deploy waits for readiness itself): the fact reports what Docker says.
    api = layout.CONTAINERS[layout.API]
    wait_until(lambda: containers(server)[api]["health"] == "healthy", f"Docker calls {api} healthy", timeout=120)
    stack = fact(server, testbed, "tasks.facts.StackContainers")
    assert sorted(stack) == ["api", "caddy", "db", "web"]
    for service, info in stack.items():
        assert info["state"] == "running", (service, info)
        assert info["config_hash"] == info["expected_hash"], service
        assert info["image_current"] is True, service
    assert stack["db"]["health"] == stack["api"]["health"] == "healthy"


def test_health_migration_and_app_role_facts(deployed, server, testbed):
    health = fact(server, testbed, "tasks.facts.StackHealth", "domain=srq-hpn.test", "tls_internal=true")
    assert health["/api/health"] == {"status": 200, "body": '{"ok":true,"service":"api"}'}
    assert health["http-redirect"] == {"status": 308, "body": "https://srq-hpn.test/"}
    assert fact(server, testbed, "tasks.facts.MigrationState") == {
        "ok": True, "current": ["0002"], "heads": ["0002"], "at_head": True}
    assert fact(server, testbed, "tasks.facts.AppRoleDrift") == []
