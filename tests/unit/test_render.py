"""Every file the deploy writes, rendered from sample settings and parsed."""

import io
import json
import subprocess
import tarfile
from dataclasses import replace

import yaml

from tasks import render
from tasks.render import MASK, Passwords
from tasks.settings import ROOT, database_url

PASSWORDS = Passwords(postgres="S/per+Secret=Admin0123456789abcdefghijKLMN", app="App/pass+word=0123456789abcdefghijKLMNOP")
QUICK_REFERENCE = [
    "DOMAIN",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_APP_USER",
    "POSTGRES_APP_PASSWORD",
    "DATABASE_URL",
    "DATABASE_URL_ADMIN",
    "NEXT_PUBLIC_API_BASE_URL",
]


def compose(settings):
    return yaml.safe_load(render.compose_file(settings))


def test_env_file_has_every_quick_reference_variable(settings):
    values = render.parse_env_file(render.env_file(settings, PASSWORDS))
    assert sorted(values) == sorted(QUICK_REFERENCE)
    assert values["DOMAIN"] == "example.com"
    assert values["POSTGRES_DB"] == "srq_hpn"
    assert values["POSTGRES_USER"] == "srq_hpn"
    assert values["POSTGRES_APP_USER"] == "srq_hpn_app"
    assert values["POSTGRES_PASSWORD"] == PASSWORDS.postgres
    assert values["POSTGRES_APP_PASSWORD"] == PASSWORDS.app
    assert values["NEXT_PUBLIC_API_BASE_URL"] == ""


def test_env_file_urls_use_app_role_and_superuser_with_encoded_passwords(settings):
    values = render.parse_env_file(render.env_file(settings, PASSWORDS))
    assert values["DATABASE_URL"] == (
        "postgresql://srq_hpn_app:App%2Fpass%2Bword%3D0123456789abcdefghijKLMNOP@db:5432/srq_hpn"
    )
    assert values["DATABASE_URL_ADMIN"].startswith("postgresql://srq_hpn:S%2Fper%2BSecret%3DAdmin")
    assert values["DATABASE_URL_ADMIN"].endswith("@db:5432/srq_hpn")


def test_masked_env_file_shows_no_secret(settings):
    masked = render.masked_env_file(settings)
    assert PASSWORDS.postgres not in masked and PASSWORDS.app not in masked
    values = render.parse_env_file(masked)
    assert values["POSTGRES_PASSWORD"] == MASK
    assert values["DATABASE_URL"] == f"postgresql://srq_hpn_app:{MASK}@db:5432/srq_hpn"


def test_passwords_repr_hides_values():
    assert PASSWORDS.app not in repr(PASSWORDS) and PASSWORDS.postgres not in str(PASSWORDS)


def test_compose_publishes_only_caddy_80_443_and_db_on_localhost(settings):
    services = compose(settings)["services"]
    assert services["caddy"]["ports"] == ["80:80", "443:443", "443:443/udp"]
    assert services["db"]["ports"] == ["127.0.0.1:5432:5432"]
    for name in ("web", "api", "migrate"):
        assert "ports" not in services[name], name


def test_compose_db_unpublished_when_asked(settings):
    services = compose(replace(settings, postgres_publish_localhost=False))["services"]
    assert "ports" not in services["db"]


def test_compose_services_names_restart_health_and_volumes(settings):
    spec = compose(settings)
    services = spec["services"]
    assert spec["name"] == "srq-hpn"
    for name in ("caddy", "web", "api", "db"):
        assert services[name]["container_name"] == f"srq-hpn-{name}"
        assert services[name]["restart"] == "unless-stopped"
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "/api/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert set(spec["volumes"]) == {"postgres_data", "caddy_data", "caddy_config"}
    assert "postgres_data:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "./db/init:/docker-entrypoint-initdb.d:ro" in services["db"]["volumes"]
    assert services["caddy"]["image"] == "caddy:2"
    assert services["db"]["image"] == "postgres:16"


def test_compose_gives_superuser_only_to_migrations(settings):
    services = compose(settings)["services"]
    assert services["api"]["environment"] == {"DATABASE_URL": "${DATABASE_URL:?DATABASE_URL is not set}"}
    assert set(services["migrate"]["environment"]) == {"DATABASE_URL_ADMIN"}
    assert services["migrate"]["profiles"] == ["tools"]
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]


def test_compose_build_args_only_when_base_images_set(settings):
    plain = compose(settings)["services"]
    assert "args" not in plain["api"]["build"]
    custom = compose(replace(settings, api_base_image="reg:5000/py:1", web_base_image="reg:5000/node:1"))["services"]
    assert custom["api"]["build"] == {"context": "./src/apps/api", "args": {"BASE_IMAGE": "reg:5000/py:1"}}
    assert custom["web"]["build"] == {"context": "./src/apps/web", "args": {"BASE_IMAGE": "reg:5000/node:1"}}


def test_compose_holds_no_secret(settings):
    text = render.compose_file(settings)
    assert PASSWORDS.app not in text and PASSWORDS.postgres not in text


def test_caddyfile_routes_api_and_web_with_security_headers(settings):
    text = render.caddyfile(settings)
    assert "{$DOMAIN} {" in text
    api = text.index("handle /api/* {")
    assert text.index("reverse_proxy api:8000") > api
    assert text.index("reverse_proxy web:3000") > text.index("handle {")
    for header in ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert header in text
    assert "tls internal" not in text
    assert "email ops@example.com" in text


def test_caddyfile_internal_tls_and_acme_ca(settings):
    text = render.caddyfile(replace(settings, caddy_tls="internal", caddy_acme_email="", caddy_acme_ca=""))
    assert "\ttls internal\n" in text
    assert not text.split("\n", 1)[1].lstrip().startswith("{\n")  # no empty global block
    staged = render.caddyfile(replace(settings, caddy_acme_ca="https://acme-staging-v02.api.letsencrypt.org/directory"))
    assert "acme_ca https://acme-staging-v02.api.letsencrypt.org/directory" in staged


def test_init_script_grants_rows_and_sequences_with_default_privileges():
    text = render.init_script()
    assert text.startswith("#!/usr/bin/env bash")
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_user"' in text
    assert 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_user"' in text
    assert "ALTER DEFAULT PRIVILEGES FOR ROLE :\"admin_user\" IN SCHEMA public\n\t\t\tGRANT SELECT, INSERT, UPDATE, DELETE ON TABLES" in text
    assert "GRANT USAGE, SELECT ON SEQUENCES" in text
    assert "NOSUPERUSER NOCREATEDB NOCREATEROLE" in text
    assert "Limited app user '$POSTGRES_APP_USER' created successfully" in text
    assert "POSTGRES_APP_PASSWORD" in text and "printenv POSTGRES_APP_PASSWORD" in text
    result = subprocess.run(["bash", "-n", str(ROOT / "templates/db/init/01-create-app-user.sh")])
    assert result.returncode == 0


def test_daemon_json_rotates_logs_and_lists_registries(settings):
    config = json.loads(render.daemon_json(settings))
    assert config == {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "live-restore": True}
    config = json.loads(render.daemon_json(replace(
        settings, docker_insecure_registries=["registry.test:5000"], docker_registry_mirrors=["https://m.example"]
    )))
    assert config["insecure-registries"] == ["registry.test:5000"]
    assert config["registry-mirrors"] == ["https://m.example"]


def test_source_archive_is_reproducible_and_skips_junk(tmp_path):
    src = tmp_path / "app"
    (src / "apps/api/__pycache__").mkdir(parents=True)
    (src / ".git").mkdir()
    (src / "apps/api/main.py").write_text("print('hi')\n")
    (src / "apps/api/__pycache__/main.pyc").write_bytes(b"junk")
    (src / ".git/HEAD").write_text("ref\n")
    run = src / "apps/run.sh"
    run.write_text("#!/bin/sh\n")
    run.chmod(0o755)
    first = render.source_archive(src)
    (src / "apps/api/main.py").touch()  # new mtime, same content
    assert render.source_archive(src) == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["apps/api/main.py", "apps/run.sh"]
    assert members["apps/run.sh"].mode == 0o755 and members["apps/api/main.py"].mode == 0o644
    (src / "apps/api/main.py").write_text("print('changed')\n")
    assert render.source_archive(src) != first


def test_database_url_encodes_reserved_characters():
    assert database_url("u", "a/b+c=d@e:f", "db") == "postgresql://u:a%2Fb%2Bc%3Dd%40e%3Af@db:5432/db"
