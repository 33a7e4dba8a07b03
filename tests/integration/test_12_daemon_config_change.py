"""Scenario 12: a daemon.json change restarts the Docker daemon once, and with
live-restore the stack's containers keep running through it."""

import pytest

from tests.integration.helpers import containers
from tests.testbed import harness

pytestmark = pytest.mark.integration


def test_daemon_json_change_restarts_docker_not_the_stack(deployed, server, testbed, caddy_ca):
    before = containers(server)
    _, docker_started = server.exec("systemctl show -p ActiveEnterTimestampMonotonic --value docker")
    changed_settings = {**testbed.settings(), "docker_log_max_size": "20m"}
    run = harness.run_pyinfra(server.inventory(**changed_settings), "deploy.py", "-y", "--json")
    assert run.returncode == 0, run.describe()
    assert sorted(run.changed_operations()) == [
        "Install Docker Engine and Compose v2 | Ensure /etc/docker/daemon.json sets log rotation and registries",
        "Install Docker Engine and Compose v2 | Ensure Docker is started and enabled at boot",
    ]
    _, docker_restarted = server.exec("systemctl show -p ActiveEnterTimestampMonotonic --value docker")
    assert int(docker_restarted) > int(docker_started), "the Docker daemon was not restarted"
    _, log_opts = server.exec("docker info --format '{{json .LoggingDriver}}' && cat /etc/docker/daemon.json")
    assert '"max-size": "20m"' in log_opts
    assert {n: c["started_at"] for n, c in containers(server).items()} == {
        n: c["started_at"] for n, c in before.items()}
    assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200

    back = harness.run_pyinfra(server.inventory(**testbed.settings()), "deploy.py", "-y", "--json")
    assert back.returncode == 0, back.describe()
    assert len(back.changed_operations()) == 2
