"""Scenario 14: a second, different app repository (tests/apps/variant-app): compose.yaml
with a driver-specific URL, a plain and a secret variable the api cannot start
without, a worker, a web build argument, a file-mounted Caddyfile, no db init
script, and ports left over from development. Fresh deploy, second run, update."""

import json
import psycopg

from tests.integration.conftest import VARIANT_ENV, VARIANT_SECRET
from tests.integration.helpers import app_copy, containers, deploy, env_file_values, start_times, wait_until
from tasks.sourcetree import Upload
from tests.testbed import harness


def test_fresh_deploy_runs_every_service_of_the_app(variant_deployed, variant_server):
    found = {info["service"]: info for info in containers(variant_server).values()}
    assert sorted(found) == ["api", "caddy", "db", "web", "worker"]
    assert all(info["state"] == "running" for info in found.values()), found

    # The deploy waits for readiness with its own probes; Docker's healthcheck may say
    # "starting" until its next interval.
    def healthy():
        health = {info["service"]: info["health"] for info in containers(variant_server).values()}
        return health["db"] == health["worker"] == "healthy"

    wait_until(healthy, "Docker calls db and worker healthy", timeout=120)


def test_variables_reach_the_api_and_the_web_build(variant_deployed, variant_server, variant_ca):
    values = env_file_values(variant_server)
    assert values["SITE_NAME"] == "Harbor" and values["SESSION_SECRET"] == VARIANT_SECRET
    _, mode = variant_server.exec("stat -c '%a %U' /opt/srq-hpn/.env.production")
    assert mode.strip() == "600 root"
    site = harness.https_get(variant_server, "/api/site", variant_ca).json()
    assert site == {"site_name": "Harbor", "session_secret_set": True}
    assert '<h1 id="site">Harbor</h1>' in harness.https_get(variant_server, "/", variant_ca).text


def test_the_worker_works_after_migrations(variant_deployed, variant_server, variant_ca):
    beat = harness.https_get(variant_server, "/api/worker", variant_ca).json()
    assert beat["last_beat_seconds_ago"] is not None and beat["last_beat_seconds_ago"] < 15


def test_development_ports_are_not_published(variant_deployed, variant_server):
    output = variant_deployed.output
    assert "Not published, whatever the app's compose file says: api: 8000:8000/tcp" in output
    assert "Not published, whatever the app's compose file says: db: 5432:5432/tcp" in output
    _, listening = variant_server.exec("ss -ltnH | awk '{print $4}'")
    sockets = listening.split()
    assert not [s for s in sockets if s.endswith(":8000") or s.endswith(":3000")], sockets
    assert [s for s in sockets if s.endswith(":5432")] == ["127.0.0.1:5432"], sockets


def test_the_deploy_creates_the_app_role_without_an_init_script(variant_deployed, variant_server):
    values = env_file_values(variant_server)
    with harness.db_tunnel(variant_server) as port:
        with psycopg.connect(host="127.0.0.1", port=port, dbname=values["POSTGRES_DB"],
                             user=values["POSTGRES_APP_USER"], password=values["POSTGRES_APP_PASSWORD"],
                             autocommit=True, connect_timeout=10) as connection:
            connection.execute("INSERT INTO notes (body) VALUES ('by the app role')")
            try:
                connection.execute("CREATE TABLE intruder (id int)")
            except psycopg.errors.InsufficientPrivilege:
                pass
            else:
                raise AssertionError("the app role could create a table")


def test_second_run_changes_nothing_and_the_secret_is_never_printed(variant_deployed, variant_server,
                                                                   variant_settings):
    before = start_times(variant_server)
    run = deploy(variant_server, variant_settings, "-vvv", "--diff", env=VARIANT_ENV)
    assert run.changed_operations() == [], [line for line in run.output.splitlines() if "Plan:" in line]
    assert start_times(variant_server) == before
    assert VARIANT_SECRET not in run.output
    # Where each of the app's own variables came from: names only.
    assert "The app's variables: SESSION_SECRET from your environment (app_secrets); SITE_NAME from app_env" \
        in run.output


def test_an_update_replaces_the_app_and_leaves_db_and_caddy_alone(variant_deployed, variant_server,
                                                                  variant_settings, variant_ca, tmp_path):
    app = app_copy(harness.VARIANT_APP, tmp_path / "variant-app")
    api = app / "apps/api/app/api.py"
    api.write_text(api.read_text() + '\n\n@app.get("/api/version")\ndef version():\n    return {"version": 2}\n')
    before = start_times(variant_server)
    run = deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(app)}, env=VARIANT_ENV)
    assert "Bringing up: swap api without downtime" in run.output, run.output[-3000:]
    after = start_times(variant_server)
    for name in ("srq-hpn-db", "srq-hpn-caddy"):
        assert after[name] == before[name], f"{name} was restarted by an app update"
    assert after["srq-hpn-api"] != before["srq-hpn-api"]
    assert harness.https_get(variant_server, "/api/version", variant_ca).json() == {"version": 2}
    _, leftovers = variant_server.exec("docker ps -a --format '{{.Names}}'")
    assert not [name for name in leftovers.split() if name.endswith("-standby")], leftovers
    release = Upload.of(app).revision
    _, current = variant_server.exec("cat /var/lib/srq-hpn/releases/current")
    assert current.strip() == release
    _, image = variant_server.exec("docker inspect --format '{{.Config.Image}}' srq-hpn-api")
    _, record = variant_server.exec(f"cat /var/lib/srq-hpn/releases/{release}.json")
    assert image.strip() == json.loads(record)["images"]["api"]  # tagged by its build context's files
