"""Scenario 11: a changed setting touches only what depends on it. A new Caddyfile is
reloaded in place: no container restarts, and the site keeps answering."""

from tests.integration.helpers import deploy, start_times
from tests.testbed import harness

def test_caddyfile_change_reloads_caddy_without_restarts(deployed, server, testbed, caddy_ca):
    before = start_times(server)
    run = deploy(server, {**testbed.settings(), "caddy_acme_email": "ops@srq-hpn.test"})
    assert sorted(run.changed_operations()) == [
        "Start the stack and verify it | Ensure every service runs the release: reload Caddy: its Caddyfile changed",
        "Write the stack's configuration | Ensure /var/lib/srq-hpn/caddy/Caddyfile routes /api/* to api and the rest to web",
    ]
    _, caddyfile = server.exec("docker exec srq-hpn-caddy cat /etc/caddy/Caddyfile")
    assert "email ops@srq-hpn.test" in caddyfile
    assert start_times(server) == before
    assert harness.https_get(server, "/api/health", caddy_ca).status == 200

    # Back to the shared settings, for the scenarios that follow.
    assert len(deploy(server, testbed.settings()).changed_operations()) == 2
