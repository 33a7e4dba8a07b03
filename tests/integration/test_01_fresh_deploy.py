"""Scenario 1: a fresh deploy takes a bare server to a verified stack."""

import json
from dataclasses import replace

import pytest

from tasks import layout, render
from tasks.settings import Settings, load_defaults, with_defaults
from tests.integration.helpers import assert_stack_is_up
from tests.testbed.harness import DOMAIN, http_get, https_get

CADDY = layout.CONTAINERS[layout.CADDY]

def test_fresh_deploy_succeeds_and_verifies_itself(deployed):
    assert deployed.returncode == 0
    names = [op["name"] for op in deployed.results()["operations"]]
    assert any("answer through Caddy" in name for name in names)
    assert deployed.results()["totals"]["error"] == 0


def test_caddy_db_api_web_run_with_db_and_api_healthy(deployed, server):
    assert_stack_is_up(server)


def test_web_answers_200_over_verified_https(deployed, server, caddy_ca):
    response = https_get(server, "/", caddy_ca)
    assert response.status == 200
    assert "srq-hpn" in response.text


def test_api_health_through_caddy(deployed, server, caddy_ca):
    response = https_get(server, "/api/health", caddy_ca)
    assert response.status == 200
    assert response.text == '{"ok":true,"service":"api"}'


def test_api_db_health_through_caddy(deployed, server, caddy_ca):
    response = https_get(server, "/api/db-health", caddy_ca)
    assert response.status == 200
    body = response.json()
    assert body["db_ok"] is True and body["now"]


def test_tls_is_verified_against_caddy_ca_only(deployed, server, tmp_path):
    import ssl

    other = tmp_path / "other.pem"
    # A CA that did not sign Caddy's certificate: the handshake must fail.
    other.write_text(_self_signed_pem())
    with pytest.raises(ssl.SSLError):
        https_get(server, "/", other)


def test_plain_http_redirects_to_https(deployed, server):
    response = http_get(server, "/")
    assert response.status in (301, 308)
    assert response.header("location") == f"https://{DOMAIN}/"


def test_security_headers(deployed, server, caddy_ca):
    headers = https_get(server, "/", caddy_ca).headers
    # The testbed's Caddy signs with its own CA (caddy_tls = "internal"): no HSTS, which would
    # pin the domain and all its subdomains to a certificate browsers cannot verify.
    assert "strict-transport-security" not in headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "server" not in headers


@pytest.mark.parametrize("mode, hsts", [("letsencrypt", "max-age=31536000; includeSubDomains"), ("internal", None)])
def test_hsts_only_with_a_certificate_browsers_trust(deployed, server, testbed, mode, hsts):
    """The deploy's Caddyfile of each TLS mode, as the server's own Caddy reads it (caddy
    adapt): a year of HSTS, subdomains included, with Let's Encrypt; none with the internal CA.
    (The testbed can serve the internal mode only: the header itself is checked above.)"""
    settings = Settings.from_data(with_defaults(testbed.settings(), load_defaults()))
    text = render.caddyfile(replace(settings, caddy_tls=mode))
    server.exec(f"cat > /tmp/Caddyfile.{mode} <<'CADDYFILE'\n{text}\nCADDYFILE\n"
                f"docker cp /tmp/Caddyfile.{mode} {CADDY}:/tmp/Caddyfile.{mode} && rm /tmp/Caddyfile.{mode}")
    try:
        _, adapted = server.exec(["docker", "exec", CADDY, "sh", "-c",  # the config on stdout; its log lines aside
                                  f"caddy adapt --config /tmp/Caddyfile.{mode} --adapter caddyfile 2>/dev/null"])
    finally:
        server.exec(["docker", "exec", CADDY, "rm", "-f", f"/tmp/Caddyfile.{mode}"])
    config = json.loads(adapted)
    found = [value for name, value in _headers_set(config) if name == "Strict-Transport-Security"]
    assert found == ([[hsts]] if hsts else []), found
    assert ("X-Frame-Options", ["DENY"]) in _headers_set(config)


def _headers_set(node):
    """Every (name, values) a `header` handler of an adapted Caddy config sets."""
    if isinstance(node, dict):
        if node.get("handler") == "headers":
            yield from (node.get("response") or {}).get("set", {}).items()
        for value in node.values():
            yield from _headers_set(value)
    elif isinstance(node, list):
        for value in node:
            yield from _headers_set(value)


def _self_signed_pem() -> str:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
             "-keyout", f"{directory}/k.pem", "-out", f"{directory}/c.pem"],
            check=True, capture_output=True,
        )
        return open(f"{directory}/c.pem").read()
