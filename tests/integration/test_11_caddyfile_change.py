"""Scenario 11: a changed setting touches only what depends on it. A new Caddyfile is
reloaded in place: no container restarts, and the site keeps answering."""

import pytest

from tests.integration.helpers import containers
from tests.testbed import harness

pytestmark = pytest.mark.integration


def test_caddyfile_change_reloads_caddy_without_restarts(deployed, server, testbed, caddy_ca):
    before = containers(server)
    changed_settings = {**testbed.settings(), "caddy_acme_email": "ops@srq-hpn.test"}
    run = harness.run_pyinfra(server.inventory(**changed_settings), "deploy.py", "-y", "--json")
    assert run.returncode == 0, run.describe()
    assert sorted(run.changed_operations()) == [
        "Start the stack and verify it | Reload Caddy's configuration (the Caddyfile changed)",
        "Write the stack's files | Ensure /opt/srq-hpn/caddy/Caddyfile routes /api/* to api and the rest to web",
    ]
    _, caddyfile = server.exec("cat /opt/srq-hpn/caddy/Caddyfile")
    assert "email ops@srq-hpn.test" in caddyfile
    assert {n: c["started_at"] for n, c in containers(server).items()} == {
        n: c["started_at"] for n, c in before.items()}
    assert harness.https_get(server, "/api/health", caddy_ca).status == 200

    # Back to the shared settings, for the scenarios that follow.
    back = harness.run_pyinfra(server.inventory(**testbed.settings()), "deploy.py", "-y", "--json")
    assert back.returncode == 0, back.describe()
    assert len(back.changed_operations()) == 2
