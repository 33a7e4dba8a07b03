"""Scenario 7: an existing db volume (init scripts skipped) still ends with a working app role."""

import psycopg
import pytest

from tests.integration.helpers import assert_stack_is_up, env_file_values
from tests.testbed import harness

def test_deploy_recreates_app_role_on_an_initialised_volume(deployed, server, testbed, caddy_ca):
    values = env_file_values(server)
    app_user, db = values["POSTGRES_APP_USER"], values["POSTGRES_DB"]
    server.exec(f"docker exec srq-hpn-db psql -U {values['POSTGRES_USER']} -d {db} -v ON_ERROR_STOP=1 "
                "-c \"INSERT INTO events (title, starts_at) VALUES ('kept across the role''s return', now())\"")
    # The guide's trap: the volume exists, so the image skips 01-create-app-user.sh,
    # and the app role is not there.
    server.exec("cd /opt/srq-hpn && docker compose --env-file .env.production down")
    server.exec("cd /opt/srq-hpn && docker compose --env-file .env.production up -d db && "
                "for i in $(seq 60); do docker exec srq-hpn-db pg_isready -q -U srq_hpn -d srq_hpn && break; sleep 1; done")
    server.exec(f"docker exec srq-hpn-db psql -U {values['POSTGRES_USER']} -d {db} -v ON_ERROR_STOP=1 "
                f"-c 'DROP OWNED BY {app_user}' -c 'DROP ROLE {app_user}'")
    _, logs = server.exec("docker logs srq-hpn-db 2>&1")
    assert "Skipping initialization" in logs or "skipping initialization" in logs.lower()

    run = harness.run_pyinfra(server.inventory(**testbed.settings()), "deploy.py", "-y", "--json")
    assert run.returncode == 0, run.stderr[-4000:]
    assert any("limited role" in name for name in run.changed_operations()), run.changed_operations()
    assert_stack_is_up(server)
    assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200
    with harness.db_tunnel(server) as port:
        with psycopg.connect(host="127.0.0.1", port=port, dbname=db, user=app_user,
                             password=values["POSTGRES_APP_PASSWORD"], connect_timeout=10) as connection:
            kept = connection.execute("SELECT count(*) FROM events WHERE title = 'kept across the role''s return'")
            assert kept.fetchone()[0] == 1  # the row from before, read by the recreated role
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute("CREATE TABLE intruder (id int)")
