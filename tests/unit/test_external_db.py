"""An external (managed) database: its settings' rules, the app's compose contract in that
mode, and the deploy's layer (the db service disabled, TLS for its clients)."""

from __future__ import annotations

import pytest
import yaml

from tasks import deploy_layer, layout
from tasks.external_db import ExternalDb, external_url_problems, literal_hosts
from tasks.validation import check_settings

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
EXTERNAL = {"srq_hpn_domain": "example.com", "postgres_host": "db.abc.eu-west-1.rds.amazonaws.com",
            "backup_wal_archive": False}


def problems(defaults, tmp_path, **data):
    ca = tmp_path / "ca.pem"
    ca.write_text(CA)
    return check_settings({**EXTERNAL, "postgres_ssl_ca": str(ca), **data}, defaults, {})


def test_an_external_database_with_its_ca_passes(defaults, tmp_path):
    assert problems(defaults, tmp_path) == []
    assert problems(defaults, tmp_path, postgres_host="10.0.4.7", postgres_port=6432) == []


@pytest.mark.parametrize("data, message", [
    ({"postgres_host": "db;rm -rf /"}, "postgres_host must be a host name or an IP address"),
    ({"postgres_host": "-oProxyCommand"}, "postgres_host must be a host name or an IP address"),
    ({"postgres_port": 70000}, "postgres_port must be a TCP port"),
    ({"postgres_sslmode": "prefer"}, "postgres_sslmode must be one of"),
    ({"postgres_ssl_ca": ""}, "postgres_ssl_ca is required with postgres_sslmode = 'verify-full'"),
    ({"postgres_sslmode": "require"}, "postgres_ssl_ca is only used with postgres_sslmode verify-ca or verify-full"),
    ({"backup_wal_archive": True}, "point-in-time recovery is the provider's: set backup_wal_archive = False"),
    ({"restore_backup": "latest"}, "restore.py replaces the stack's own database"),
    ({"drill_time": "2026-11-30T10:00:00Z"}, "drill_time rehearses the stack's own WAL archive"),
])
def test_external_database_rules(defaults, tmp_path, data, message):
    found = problems(defaults, tmp_path, **data)
    assert any(message in problem for problem in found), found


def test_a_ca_file_that_holds_no_certificate_is_refused(defaults, tmp_path):
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("hello\n")
    found = problems(defaults, tmp_path, postgres_ssl_ca=str(bad))
    assert any("holds no PEM certificate" in problem for problem in found), found
    found = problems(defaults, tmp_path, postgres_ssl_ca=str(tmp_path / "missing.pem"))
    assert any("cannot read" in problem for problem in found), found


def test_one_server_needs_none_of_it(defaults):
    assert check_settings({"srq_hpn_domain": "example.com"}, defaults, {}) == []


def test_the_resolved_urls_must_reach_the_external_database():
    config = {"services": {
        "api": {"environment": {"DATABASE_URL": "postgresql://a:b@db.example.net:5432/x",
                                "DATABASE_URL_ADMIN": "postgresql+psycopg://a:b@db:5432/x", "OTHER": "1"}},
        "worker": {"environment": {"DATABASE_URL": "postgresql://a:b@db.example.net/x"}},
        "db": {"environment": {"POSTGRES_DB": "x"}},
    }}
    assert external_url_problems(config, "db.example.net", 5432) == [
        "api: DATABASE_URL_ADMIN connects to db:5432, not db.example.net:5432"]


def test_a_literal_db_host_is_found_before_compose_runs():
    documents = [{"services": {
        "api": {"environment": {"DATABASE_URL": "postgresql+psycopg://${U}:${P}@db/${POSTGRES_DB}"}},
        "worker": {"environment": ["DATABASE_URL=postgresql://${U}:${P}@${POSTGRES_HOST:-db}:${POSTGRES_PORT:-5432}/x"]},
    }}]
    assert literal_hosts(documents) == ["api: DATABASE_URL connects to db"]


def _config() -> dict:
    return {"name": "srq-hpn", "services": {
        "db": {"image": "postgres:16", "ports": [{"target": 5432, "published": "5432", "host_ip": "127.0.0.1"}]},
        "api": {"image": "x", "depends_on": {"db": {"condition": "service_healthy"}},
                "environment": {"DATABASE_URL": "postgresql://u:p@pg.example.net:5432/x"}},
        "worker": {"image": "x", "depends_on": {"db": {"condition": "service_started"},
                                                "api": {"condition": "service_started"}},
                   "environment": {"DATABASE_URL": "postgresql://u:p@pg.example.net:5432/x"}},
        "web": {"image": "x"},
        "caddy": {"image": "caddy:2", "depends_on": {"api": {"condition": "service_started"}}},
    }}


def test_the_layer_keeps_the_db_service_from_starting_and_gives_its_clients_tls():
    external = ExternalDb("pg.example.net", 5432, "verify-full", has_ca=True)
    layer = deploy_layer.build_layer(_config(), app_dir="/opt/srq-hpn", caddy_dir="/var/lib/srq-hpn/caddy",
                                     caddyfile_template=True, db_on_localhost=True, release="r1", tags={},
                                     external_db=external)
    services = layer.document["services"]
    assert services["db"]["profiles"] == [layout.DB_OFF_PROFILE]
    assert isinstance(services["api"]["depends_on"], deploy_layer.Reset)
    assert dict(services["worker"]["depends_on"]) == {"api": {"condition": "service_started"}}
    for client in ("api", "worker"):
        assert services[client]["environment"] == {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": layout.DB_CA_MOUNT}
        assert {"type": "bind", "source": layout.DB_CA_FILE, "target": layout.DB_CA_MOUNT,
                "read_only": True} in services[client]["volumes"]
    assert "environment" not in services.get("web", {}) and "environment" not in services["caddy"]
    text = deploy_layer.dump_override(layer.document, "header")
    assert "depends_on: !reset []" in text and "depends_on: !override" in text
    yaml.safe_load(text.replace("!reset", "").replace("!override", ""))  # still YAML


def test_without_an_external_database_the_layer_is_as_before():
    layer = deploy_layer.build_layer(_config(), app_dir="/opt/srq-hpn", caddy_dir="/var/lib/srq-hpn/caddy",
                                     caddyfile_template=True, db_on_localhost=True, release="r1", tags={})
    services = layer.document["services"]
    assert "profiles" not in services.get("db", {})
    assert all("depends_on" not in entry and "environment" not in entry for entry in services.values())


def test_a_url_with_an_unencoded_base64_password_is_read_to_its_host():
    from tasks.external_db import url_host_port

    assert url_host_port("postgresql://app:ab/c+d=@10.0.0.9:6432/x") == ("10.0.0.9", 6432)
    assert url_host_port("postgresql+psycopg://app:a/b@db/x") == ("db", 5432)
    assert url_host_port("redis://x@y/0") is None
