"""Scenario 6: a bad configuration is rejected before anything on the server changes."""

import pytest

from tests.testbed import harness

pytestmark = pytest.mark.integration


def test_bad_configuration_changes_nothing(testbed, fresh_server):
    server = fresh_server("preflight")
    settings = {**testbed.settings(), "srq_hpn_domain": "https://example.com/", "postgres_app_user": "App-User",
                "caddy_tsl": "internal"}
    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "-y",
                              env={"POSTGRES_PASSWORD": "changeme"})
    assert run.returncode != 0
    for expected in (
        "srq_hpn_domain must be a bare host name",
        "postgres_app_user must be a PostgreSQL identifier",
        "unknown setting 'caddy_tsl' (did you mean 'caddy_tls'?)",
        "POSTGRES_PASSWORD is a known default",
        "nothing on the server was changed",
    ):
        assert expected in run.output, f"missing {expected!r} in:\n{run.output[-3000:]}"
    assert "Starting operation" not in run.output
    assert server.exec("test -e /opt/srq-hpn", check=False)[0] != 0, "the app directory was created"
    assert server.exec("command -v docker", check=False)[0] != 0, "Docker was installed"
    assert server.exec("test -e /etc/docker", check=False)[0] != 0, "/etc/docker was created"


def test_db_that_never_gets_healthy_stops_the_deploy_with_its_logs(testbed, fresh_server):
    """Step 6 waits for the db's healthcheck; on timeout it names the service, shows its
    last log lines, and starts nothing else."""
    server = fresh_server("unhealthy-db")
    # An image that runs but whose healthcheck (pg_isready) can never pass.
    settings = {**testbed.settings(), "postgres_image": testbed.image_refs["caddy"], "postgres_healthy_timeout": 20}
    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "-y")
    assert run.returncode != 0
    assert "db (srq-hpn-db) is not healthy after 20s" in run.output, run.output[-3000:]
    assert "Nothing else was started. Last log lines:" in run.output
    assert "  | " in run.output.split("Last log lines:", 1)[1]  # the container's own lines follow
    _, names = server.exec("docker ps -a --format '{{.Names}}'")
    assert names.split() == ["srq-hpn-db"], names
    _, images = server.exec("docker images --format '{{.Repository}}'")
    assert "srq-hpn-api" not in images and "srq-hpn-web" not in images, images
