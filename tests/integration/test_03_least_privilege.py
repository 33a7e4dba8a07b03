"""Scenario 3: the api's role can read and write rows, and nothing more."""

import psycopg
import pytest

from tests.integration.helpers import env_file_values
from tests.testbed.harness import db_tunnel

@pytest.fixture
def app_connection(deployed, server):
    values = env_file_values(server)
    with db_tunnel(server) as port:
        with psycopg.connect(host="127.0.0.1", port=port, dbname=values["POSTGRES_DB"],
                             user=values["POSTGRES_APP_USER"], password=values["POSTGRES_APP_PASSWORD"],
                             autocommit=True, connect_timeout=10) as connection:
            yield connection


@pytest.mark.parametrize("table", ["events", "event_tags"])  # event_tags comes from the second migration
def test_app_role_reads_and_writes_rows(app_connection, table):
    with app_connection.transaction(force_rollback=True):
        cur = app_connection.cursor()
        cur.execute("INSERT INTO events (title, starts_at) VALUES ('least privilege', now()) RETURNING id")
        event_id = cur.fetchone()[0]
        if table == "event_tags":
            cur.execute("INSERT INTO event_tags (event_id, tag) VALUES (%s, 'a') RETURNING id", (event_id,))
            row_id = cur.fetchone()[0]
        else:
            row_id = event_id
        cur.execute(f"UPDATE {table} SET {'tag' if table == 'event_tags' else 'title'} = 'b' WHERE id = %s", (row_id,))
        assert cur.rowcount == 1
        cur.execute(f"SELECT count(*) FROM {table} WHERE id = %s", (row_id,))
        assert cur.fetchone()[0] == 1
        cur.execute(f"DELETE FROM {table} WHERE id = %s", (row_id,))
        assert cur.rowcount == 1


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "DROP TABLE event_tags",
        "ALTER TABLE events ADD COLUMN intruder int",
        "TRUNCATE events",
        "CREATE ROLE intruder",
    ],
)
def test_app_role_cannot_change_the_schema(app_connection, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_connection.execute(statement)


def test_app_role_is_not_a_superuser(app_connection):
    row = app_connection.execute(
        "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (False, False, False)


def test_api_through_caddy_writes_with_the_app_role(deployed, server, caddy_ca):
    """The running api itself (DATABASE_URL = app role) writes to and reads from the migrated tables."""
    import json

    from tests.testbed.harness import https_get

    created = https_get(server, "/api/events", caddy_ca, method="POST", headers={"content-type": "application/json"},
                        body=json.dumps({"title": "written through caddy", "starts_at": "2026-12-01T10:00:00Z"}).encode())
    assert created.status == 201, created.text
    row = created.json()
    listed = https_get(server, "/api/events", caddy_ca).json()
    assert any(event["id"] == row["id"] and event["title"] == "written through caddy" for event in listed)
