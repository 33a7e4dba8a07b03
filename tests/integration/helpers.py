"""Domain-level assertions on a deployed server."""

from __future__ import annotations

from tests.testbed.harness import Server

SERVICES = ("caddy", "db", "api", "web")


def containers(server: Server) -> dict[str, dict]:
    """name -> {state, health, started_at} of the srq-hpn containers on the server."""
    fmt = "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.StartedAt}}"
    _, out = server.exec(f"docker inspect --format '{fmt}' $(docker ps -aq --filter name=srq-hpn-)")
    result = {}
    for line in out.splitlines():
        name, state, health, started = line.split()
        result[name.lstrip("/")] = {"state": state, "health": health, "started_at": started}
    return result


def assert_stack_is_up(server: Server) -> None:
    found = containers(server)
    for service in SERVICES:
        name = f"srq-hpn-{service}"
        assert name in found, f"{name} is not on the server: {found}"
        assert found[name]["state"] == "running", found[name]
    assert found["srq-hpn-db"]["health"] == "healthy", found
    assert found["srq-hpn-api"]["health"] == "healthy", found


def env_file_values(server: Server) -> dict[str, str]:
    _, text = server.exec("cat /opt/srq-hpn/.env.production")
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value.strip("'")
    return values


def start_times(server: Server) -> dict[str, str]:
    """When each srq-hpn container last started: unchanged means not restarted."""
    return {name: info["started_at"] for name, info in containers(server).items()}


def deploy(server: Server, settings: dict, *args: str):
    """Run the deploy (-y --json) as an operator would; it must succeed. Returns the run."""
    from tests.testbed import harness

    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "-y", "--json", *args)
    assert run.returncode == 0, run.describe()
    return run
