"""Scenario 34: an external (managed) PostgreSQL instead of the app's db service.

The stand-in (tests.testbed.managed_db) accepts TLS connections only, with a certificate
of the run's own CA, and its admin role has CREATEROLE and CREATEDB but not SUPERUSER, as
a managed service's. The example app builds its URLs from POSTGRES_HOST and POSTGRES_PORT.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tasks import layout
from tests.integration.helpers import app_role_problems, backups, containers, deploy, env_file_values, \
    failed_deploy, manifest, start_times, take_backup
from tests.testbed import harness
from tests.testbed.harness import VARIANT_APP, caddy_root_ca, https_get


@pytest.fixture(scope="module")
def managed(testbed):
    database = testbed.start_managed_db("managed-34")
    yield database
    database.remove()


@pytest.fixture(scope="module")
def external(testbed, managed):
    return testbed.settings(**managed.settings())


@pytest.fixture(scope="module")
def external_server(testbed, managed, external):
    server = testbed.start_server("external-db")
    run = deploy(server, external, env=managed.env())
    yield server, run
    server.remove()


def test_the_stack_runs_on_the_external_database_without_its_db_service(external_server, managed, testbed):
    server, _run = external_server
    found = {info["service"]: info for info in containers(server).values()}
    assert layout.DB not in found, f"the app's db service was started: {found}"
    for service in (layout.API, layout.WEB, layout.CADDY):
        assert found[service]["state"] == "running", found
    values = env_file_values(server)
    assert values["POSTGRES_HOST"] == managed.address and values["POSTGRES_PORT"] == "5432"
    # The api reaches the database: db-health through Caddy, and its schema is at the release's head.
    response = https_get(server, "/api/db-health", caddy_root_ca(server, testbed.workdir / "external-ca.crt"))
    assert response.status == 200, response
    assert managed.query("SELECT version_num FROM alembic_version"), "alembic never ran on the external database"


def test_every_connection_of_the_api_is_tls_with_the_verified_ca(external_server, managed):
    server, _run = external_server
    _code, env = server.exec(["docker", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}",
                              layout.CONTAINERS[layout.API]])
    assert "PGSSLMODE=verify-full" in env.splitlines()
    assert f"PGSSLROOTCERT={layout.DB_CA_MOUNT}" in env.splitlines()
    rows = managed.query("SELECT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid "
                         "WHERE a.datname = 'srq_hpn' AND a.pid <> pg_backend_pid() AND a.usename IS NOT NULL")
    assert rows, "no connection of the api to the external database"
    assert all(ssl for _user, ssl in rows), rows


def test_the_app_role_has_row_privileges_only_and_the_admin_is_no_superuser(external_server, managed):
    (row,) = managed.query("SELECT rolsuper FROM pg_roles WHERE rolname = %s", managed.settings()["postgres_user"])
    assert row == (False,), "the stand-in's admin must not be a superuser"
    assert app_role_problems(managed) == []


def test_a_second_run_changes_nothing(external_server, managed, external):
    server, _run = external_server
    before = start_times(server)
    run = deploy(server, external, env=managed.env())
    assert run.changed_operations() == [], f"operations that changed on the second run: {run.changed_operations()}"
    assert start_times(server) == before


def test_no_password_in_any_output(external_server, managed, external):
    server, first = external_server
    runs = {
        "first deploy": first,
        "-vvv": harness.run_pyinfra(server.inventory(**external), "deploy.py", "-y", "-vvv", env=managed.env()),
        "--dry --diff -vvv": harness.run_pyinfra(server.inventory(**external), "deploy.py", "--dry", "--diff", "-vvv",
                                                 env=managed.env()),
    }
    secrets = [managed.admin_password, env_file_values(server)["POSTGRES_APP_PASSWORD"]]
    secrets += [quote(secret, safe="") for secret in secrets]
    for label, run in runs.items():
        assert run.returncode == 0, f"{label} failed:\n{run.output[-4000:]}"
        assert not [secret for secret in secrets if secret in run.output], f"{label} printed a password"


def test_the_scheduled_backup_dumps_the_external_database(external_server, managed):
    server, _run = external_server
    name = take_backup(server)
    record = manifest(server, name)
    assert record["tables"], record
    assert record["alembic_revision"] == [managed.query("SELECT version_num FROM alembic_version")[0][0]]
    _code, leftovers = server.exec(f"docker ps -aq --filter label={layout.DB_CLIENT_LABEL}")
    assert leftovers.strip() == "", "the backup's database client was left running"
    assert name in backups(server)


def test_a_repository_that_names_its_db_host_is_refused_before_any_change(testbed, managed, fresh_server):
    server = fresh_server("external-refused")
    settings = testbed.settings(VARIANT_APP, app_env={"SITE_NAME": "Harbor"}, app_secrets=["SESSION_SECRET"],
                                **managed.settings())
    run = failed_deploy(server, settings, env={**managed.env(), "SESSION_SECRET": "ses-" + "x9" * 16})
    assert "POSTGRES_HOST" in run.output and "DATABASE_URL connects to db" in run.output, run.output[-3000:]
    assert server.exec("command -v docker", check=False)[0] != 0, "Docker was installed: the refusal came late"
