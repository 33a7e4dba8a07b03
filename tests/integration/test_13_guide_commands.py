"""Scenario 13: the guide's own commands, run verbatim on a deployed server, see the
configuration the deploy runs (the app's compose file plus the deploy's layer)."""

from tests.integration.helpers import COMPOSE, containers


def test_compose_ps_and_config_hash_match_the_running_containers(deployed, server):
    _, ps = server.exec(f"{COMPOSE} ps --format '{{{{.Service}}}} {{{{.Name}}}} {{{{.State}}}}'")
    rows = sorted(line.split() for line in ps.splitlines())
    assert rows == [["api", "srq-hpn-api", "running"], ["caddy", "srq-hpn-caddy", "running"],
                    ["db", "srq-hpn-db", "running"], ["web", "srq-hpn-web", "running"]]
    _, hashes = server.exec(f"{COMPOSE} config --hash '*'")
    wanted = dict(line.split() for line in hashes.splitlines())
    for name in containers(server):
        _, label = server.exec(["docker", "inspect", "--format",
                                '{{index .Config.Labels "com.docker.compose.service"}} '
                                '{{index .Config.Labels "com.docker.compose.config-hash"}}', name])
        service, running_hash = label.split()
        assert wanted[service] == running_hash, f"{name} runs a configuration the guide's commands do not see"


def test_the_guides_log_commands(deployed, server):
    _, logs = server.exec(f"{COMPOSE} logs --no-color --tail 20")
    assert "srq-hpn-api" in logs and "srq-hpn-db" in logs
    _, api = server.exec("docker logs --tail 20 srq-hpn-api 2>&1")
    assert "Uvicorn running on http://0.0.0.0:8000" in api or "GET /api/health" in api


def test_the_guides_migration_commands(deployed, server):
    # `exec` needs -T without a terminal (this test has none); otherwise verbatim.
    code, out = server.exec(f"{COMPOSE} exec -T api alembic upgrade head", check=False)
    assert code == 0, out
    code, out = server.exec(f"{COMPOSE} run --rm -T api alembic upgrade head", check=False)
    assert code == 0, out
    _, current = server.exec(f"{COMPOSE} run --rm -T api alembic current 2>/dev/null")
    assert current.strip() == "0002 (head)"


def test_the_guides_admin_shell(deployed, server):
    _, answer = server.exec("docker exec srq-hpn-db psql -U srq_hpn srq_hpn -tAc 'SELECT current_user'")
    assert answer.strip() == "srq_hpn"


def test_the_env_file_names_the_deploys_layer(deployed, server):
    _, compose_file = server.exec("grep '^COMPOSE_FILE=' /opt/srq-hpn/.env.production")
    assert compose_file.strip() == "COMPOSE_FILE=compose.yml:/var/lib/srq-hpn/compose.deploy.yml"
    _, mounts = server.exec("docker inspect --format '{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}' srq-hpn-caddy")
    assert "/var/lib/srq-hpn/caddy:/etc/caddy" in mounts.split()  # the templated Caddyfile, not the repository's
