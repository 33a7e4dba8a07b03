"""Scenario 53: a team tries its own app on a throwaway server before production: the
sandbox command deploys the app repository and settings it is given (here the second
app, with a settings file of the operator's and its secret exported), and tears down."""

from __future__ import annotations

import os
import subprocess
import sys

import docker
import pytest

from tests.integration.conftest import VARIANT_ENV, VARIANT_SECRET
from tests.testbed import harness


def sandbox(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.testbed.sandbox", *args], cwd=harness.REPO_ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=1800)


def test_the_sandbox_deploys_the_operators_own_app_and_settings(tmp_path):
    if docker.from_env().containers.list(all=True, filters={"label": f"{harness.SANDBOX_LABEL}=1"}):
        pytest.skip("a sandbox of this machine's is up: this scenario would replace it")
    own = tmp_path / "production.py"
    own.write_text('app_env = {"SITE_NAME": "Harbor"}\napp_secrets = ["SESSION_SECRET"]\n'
                   'srq_hpn_domain = "harbor.example.org"\ncaddy_tls = "letsencrypt"\n')
    try:
        up = sandbox("up", "--app", str(harness.VARIANT_APP), "--settings", str(own), env=VARIANT_ENV)
        output = up.stdout + up.stderr
        assert up.returncode == 0, output[-6000:]
        assert f"Deploying {harness.VARIANT_APP}" in output
        assert "The app's variables: SESSION_SECRET from your environment (app_secrets); SITE_NAME from app_env" in output
        assert VARIANT_SECRET not in output
        assert "The stack answers at https://harbor.example.org:" in output
        server = harness.Server.attach("srq-hpn-sandbox", harness.REPO_ROOT / ".sandbox" / "id_ed25519")
        _, values = server.exec("grep -E '^(SITE_NAME|DOMAIN)=' /opt/srq-hpn/.env.production")
        assert "SITE_NAME='Harbor'" in values and "DOMAIN='harbor.example.org'" in values
        ca = harness.REPO_ROOT / ".sandbox" / "caddy-root.crt"
        answer = harness.https_get(server, "/api/health", ca, domain="harbor.example.org")
        assert answer.status == 200, answer.text
    finally:
        down = sandbox("down")
        assert down.returncode == 0, down.stdout + down.stderr
