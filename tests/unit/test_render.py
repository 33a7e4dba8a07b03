"""Every file the deploy writes, rendered from sample settings and parsed."""

import json
import subprocess
from dataclasses import replace

import pytest

from tasks import layout, render
from tasks.render import MASK
from tasks.secrets import EnvSources, Passwords
from tasks.settings import database_url

PASSWORDS = Passwords(postgres="S/per+Secret=Admin0123456789abcdefghijKLMN", app="App/pass+word=0123456789abcdefghijKLMNOP")
GUIDE = ["DOMAIN", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_APP_USER", "POSTGRES_APP_PASSWORD",
         "NEXT_PUBLIC_API_BASE_URL"]


def env_text(settings, needed=(), environ=None, masked=False):
    resolved = EnvSources(settings, PASSWORDS, {}).resolve({name: {"compose.yml"} for name in needed}, environ or {})
    assert resolved.problems == []
    return render.env_file(resolved, "compose.yml:/var/lib/srq-hpn/compose.deploy.yml", masked=masked)


def test_env_file_has_the_guides_variables_and_compose_file(settings):
    values = render.parse_env_file(env_text(settings))
    assert sorted(values) == sorted(GUIDE + ["COMPOSE_FILE"])
    assert values["COMPOSE_FILE"] == "compose.yml:/var/lib/srq-hpn/compose.deploy.yml"
    assert values["DOMAIN"] == "example.com"
    assert (values["POSTGRES_DB"], values["POSTGRES_USER"], values["POSTGRES_APP_USER"]) == (
        "srq_hpn", "srq_hpn", "srq_hpn_app")
    assert values["POSTGRES_PASSWORD"] == PASSWORDS.postgres
    assert values["POSTGRES_APP_PASSWORD"] == PASSWORDS.app
    assert values["NEXT_PUBLIC_API_BASE_URL"] == ""


def test_env_file_adds_urls_and_extra_variables_only_when_asked(settings):
    settings = replace(settings, app_env={"SITE_NAME": "Harbor"}, app_secrets=["TOKEN", "OTHER"])
    values = render.parse_env_file(env_text(settings, ["DATABASE_URL", "SITE_NAME", "TOKEN"],
                                            {"TOKEN": "tok-1234567890abcdef", "OTHER": "not asked for"}))
    assert values["DATABASE_URL"] == (
        "postgresql://srq_hpn_app:App%2Fpass%2Bword%3D0123456789abcdefghijKLMNOP@db:5432/srq_hpn")
    assert "DATABASE_URL_ADMIN" not in values and "OTHER" not in values
    assert values["SITE_NAME"] == "Harbor" and values["TOKEN"] == "tok-1234567890abcdef"


def test_masked_env_file_shows_no_secret_but_plain_values(settings):
    settings = replace(settings, app_env={"SITE_NAME": "Harbor"}, app_secrets=["TOKEN"])
    masked = env_text(settings, ["DATABASE_URL_ADMIN", "SITE_NAME", "TOKEN"], {"TOKEN": "tok-1234567890abcdef"},
                      masked=True)
    assert PASSWORDS.postgres not in masked and PASSWORDS.app not in masked and "tok-1234" not in masked
    values = render.parse_env_file(masked)
    assert values["POSTGRES_PASSWORD"] == values["TOKEN"] == values["DATABASE_URL_ADMIN"] == MASK
    assert values["SITE_NAME"] == "Harbor" and values["DOMAIN"] == "example.com"


def test_env_file_is_valid_shell_and_dotenv(settings, tmp_path):
    path = tmp_path / "env"
    path.write_text(env_text(settings, ["DATABASE_URL"]))
    done = subprocess.run(["bash", "-c", f"set -a; . {path}; printf %s \"$POSTGRES_APP_PASSWORD|$DATABASE_URL\""],
                          capture_output=True, text=True, check=True)
    assert done.stdout == PASSWORDS.app + "|" + database_url("srq_hpn_app", PASSWORDS.app, "srq_hpn")


def test_passwords_repr_hides_values():
    assert PASSWORDS.app not in repr(PASSWORDS) and PASSWORDS.postgres not in str(PASSWORDS)
    sources = EnvSources(None, PASSWORDS, {"X": "server-secret"})
    assert "server-secret" not in repr(sources) and PASSWORDS.app not in repr(sources)


def test_caddyfile_routes_api_and_web_with_security_headers_and_retries(settings):
    text = render.caddyfile(settings)
    assert "{$DOMAIN} {" in text
    api = text.index("handle /api/* {")
    assert text.index("reverse_proxy api:8000 {") > api
    assert text.index("reverse_proxy web:3000 {") > text.index("handle {")
    assert text.count("lb_try_duration 10s") == 2 and text.count("lb_try_interval 100ms") == 2
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert header in text
    assert '\t\tStrict-Transport-Security "max-age=31536000; includeSubDomains"\n' in text  # a public CA's certificate
    assert "tls internal" not in text
    assert "email ops@example.com" in text


def test_caddyfile_internal_tls_and_acme_ca(settings):
    text = render.caddyfile(replace(settings, caddy_tls="internal", caddy_acme_email="", caddy_acme_ca=""))
    assert "\ttls internal\n" in text
    # No HSTS with Caddy's own CA: a browser would pin the domain (and, with includeSubDomains,
    # every subdomain) to HTTPS with a certificate it cannot verify, and allow no click-through.
    assert "Strict-Transport-Security" not in text
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "-Server"):
        assert header in text
    assert not text.split("\n", 1)[1].lstrip().startswith("{\n")  # no empty global block
    staged = render.caddyfile(replace(settings, caddy_acme_ca="https://acme-staging-v02.api.letsencrypt.org/directory"))
    assert "acme_ca https://acme-staging-v02.api.letsencrypt.org/directory" in staged
    assert "acme_ca_root" not in staged


def test_a_private_acme_server_is_trusted_through_its_root(settings, tmp_path):
    private = replace(settings, caddy_acme_ca="https://acme.corp.example/dir", caddy_acme_ca_root="ca/root.pem")
    text = render.caddyfile(private)
    assert "{\n\temail ops@example.com\n\tacme_ca https://acme.corp.example/dir\n" \
           f"\tacme_ca_root {layout.CADDY_ACME_CA_ROOT}\n}}\n" in text
    # The checks and the checklist verify the site's certificate against the server's copy of it.
    assert sourced(render.deploy_env(private), tmp_path, "ACME_CA_ROOT", "CADDY_TLS") == [
        "/var/lib/srq-hpn/caddy/acme-ca-root.pem", "letsencrypt"]
    assert sourced(render.deploy_env(settings), tmp_path, "ACME_CA_ROOT") == [""]


def test_daemon_json_rotates_logs_and_lists_registries(settings):
    config = json.loads(render.daemon_json(settings))
    assert config == {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "live-restore": True}
    config = json.loads(render.daemon_json(replace(
        settings, docker_insecure_registries=["registry.test:5000"], docker_registry_mirrors=["https://m.example"]
    )))
    assert config["insecure-registries"] == ["registry.test:5000"]
    assert config["registry-mirrors"] == ["https://m.example"]


def sourced(text, tmp_path, *names):
    path = tmp_path / "conf"
    path.write_text(text)
    script = f". {path}; " + "; ".join(f'printf "%s\\n" "${name}"' for name in names)
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()


def test_deploy_env_and_stack_env_are_shell(settings, tmp_path):
    assert sourced(render.deploy_env(settings), tmp_path, "APP_DIR", "STATE_DIR", "UPSTREAMS", "DB_SERVICE") == [
        "/opt/srq-hpn", "/var/lib/srq-hpn", "api:8000 web:3000", "db"]
    text = render.stack_env("my app", {"db": "srq-hpn-db", "worker": "w-1"}, "/etc/caddy/Caddyfile")
    assert sourced(text, tmp_path, "PROJECT", "DB_CONTAINER", "CADDYFILE") == [
        "my app", "srq-hpn-db", "/etc/caddy/Caddyfile"]
    assert "WORKER_CONTAINER" not in text


@pytest.mark.parametrize("name", sorted(render.server_programs()))
def test_server_programs_are_valid_bash(name):
    done = subprocess.run(["bash", "-n", str(render.SERVER_PROGRAMS / name)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_app_role_script_grants_rows_and_sequences_with_default_privileges():
    text = (render.SERVER_PROGRAMS / "app-role.sh").read_text()
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_user"' in text
    assert 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_user"' in text
    assert "ALTER DEFAULT PRIVILEGES FOR ROLE :\"admin_user\" IN SCHEMA public\n\t\t\tGRANT SELECT, INSERT, UPDATE, DELETE ON TABLES" in text
    for attribute in ("NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION", "NOBYPASSRLS"):
        assert f"'{attribute}'" in text  # taken away when the role has it (a managed admin may not name them all)
    assert "printenv POSTGRES_APP_PASSWORD" in text  # never on a command line


def test_layout_paths_derive_from_settings(settings):
    paths = replace(settings, app_dir="/srv/app/", state_dir="/var/lib/app").paths
    assert paths.env_file == "/srv/app/.env.production"
    assert paths.override == "/var/lib/app/compose.deploy.yml"
    assert render.compose_file_value(["compose.yaml"], paths) == "compose.yaml:/var/lib/app/compose.deploy.yml"
    assert layout.Paths().lock == "/var/lib/srq-hpn/deploy.lock"


def test_database_url_encodes_reserved_characters():
    assert database_url("u", "a/b+c=d@e:f", "db") == "postgresql://u:a%2Fb%2Bc%3Dd%40e%3Af@db:5432/db"
