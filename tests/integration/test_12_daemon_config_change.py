"""Scenario 12: a daemon.json change restarts the Docker daemon once, and with
live-restore the stack's containers keep running through it."""

from tests.integration.helpers import deploy, start_times
from tests.testbed import harness

def test_daemon_json_change_restarts_docker_not_the_stack(deployed, server, testbed, caddy_ca):
    before = start_times(server)
    _, docker_started = server.exec("systemctl show -p ActiveEnterTimestampMonotonic --value docker")
    run = deploy(server, {**testbed.settings(), "docker_log_max_size": "20m"})
    assert sorted(run.changed_operations()) == [
        "Install Docker Engine and Compose v2 | Ensure /etc/docker/daemon.json sets log rotation and registries",
        "Install Docker Engine and Compose v2 | Ensure Docker is started and enabled at boot",
    ]
    _, docker_restarted = server.exec("systemctl show -p ActiveEnterTimestampMonotonic --value docker")
    assert int(docker_restarted) > int(docker_started), "the Docker daemon was not restarted"
    _, log_opts = server.exec("docker info --format '{{json .LoggingDriver}}' && cat /etc/docker/daemon.json")
    assert '"max-size": "20m"' in log_opts
    assert start_times(server) == before
    assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200

    assert len(deploy(server, testbed.settings()).changed_operations()) == 2
