"""Scenario 1: a fresh deploy takes a bare server to a verified stack."""

import pytest

from tests.integration.helpers import assert_stack_is_up
from tests.testbed.harness import DOMAIN, http_get, https_get

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
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "server" not in headers


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
