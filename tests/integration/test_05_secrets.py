"""Scenario 5: the env file is root-only, and no password is ever printed."""

import subprocess

from tests.integration.helpers import env_file_values
from tests.testbed import harness

def new_password() -> str:
    return subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True, text=True, check=True).stdout.strip()


def test_env_file_is_0600_root(deployed, server):
    _, out = server.exec("stat -c '%a %U %G' /opt/srq-hpn/.env.production")
    assert out.strip() == "600 root root"


def test_no_password_in_any_output(deployed, server, testbed, caddy_ca):
    inventory = server.inventory(**testbed.settings())
    generated = env_file_values(server)
    given = {"POSTGRES_PASSWORD": new_password(), "POSTGRES_APP_PASSWORD": new_password()}
    runs = {
        "-vvv (unchanged)": harness.run_pyinfra(inventory, "deploy.py", "-y", "-vvv"),
        "--dry --diff -vvv (rotation planned)": harness.run_pyinfra(inventory, "deploy.py", "--dry", "--diff", "-vvv", env=given),
        "--diff -vvv (rotation applied)": harness.run_pyinfra(inventory, "deploy.py", "-y", "--diff", "-vvv", env=given),
        "--json": harness.run_pyinfra(inventory, "deploy.py", "-y", "--json", env=given),
    }
    secrets = [generated["POSTGRES_PASSWORD"], generated["POSTGRES_APP_PASSWORD"], *given.values()]
    from urllib.parse import quote

    secrets += [quote(s, safe="") for s in secrets]
    for label, run in runs.items():
        assert run.returncode == 0, f"{label} failed:\n{run.output[-4000:]}"
        leaked = [s[:6] + "…" for s in secrets if s in run.output]
        assert not leaked, f"{label} printed a password"
    assert "POSTGRES_PASSWORD='********'" in runs["--diff -vvv (rotation applied)"].output

    # The rotation took effect: the env file holds the given passwords and the stack still works.
    values = env_file_values(server)
    assert values["POSTGRES_PASSWORD"] == given["POSTGRES_PASSWORD"]
    assert values["POSTGRES_APP_PASSWORD"] == given["POSTGRES_APP_PASSWORD"]
    assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200
