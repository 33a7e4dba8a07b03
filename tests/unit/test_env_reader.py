"""No server program runs .env.production as shell: its values are read as text
(lib.sh's env_value), so a value that closes its quotes and holds $(...) is only a
value. Run for real with bash, the deploy's own env template, and a stand-in `docker`
on PATH that records what it was given."""

import os
import subprocess

import pytest

from tasks import render

PROGRAMS = render.SERVER_PROGRAMS


@pytest.fixture
def server(tmp_path):
    """A deploy.env, an .env.production written by the deploy's template with a hostile
    password, and a stand-in docker: {"env": ..., "marker": ..., "hostile": ...}."""
    marker = tmp_path / "pwned"
    hostile = f"x'$(touch {marker})'"
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    values = {"DOMAIN": "example.com", "POSTGRES_DB": "srq_hpn", "POSTGRES_USER": "srq_hpn",
              "POSTGRES_PASSWORD": hostile, "POSTGRES_APP_USER": "srq_hpn_app",
              "POSTGRES_APP_PASSWORD": "App/pass+word=0123456789abcdefghijKLMNOP", "NEXT_PUBLIC_API_BASE_URL": ""}
    text = render.render_template("env.production.j2", compose_file="compose.yml:/var/lib/srq-hpn/compose.deploy.yml",
                                  values=values, extra=[("SITE_NAME", "Harbor")])
    assert f"POSTGRES_PASSWORD='{hostile}'\n" in text  # as the deploy writes it
    (app_dir / ".env.production").write_text(text)
    config = tmp_path / "deploy.env"
    config.write_text(f"APP_DIR={app_dir}\nSTATE_DIR={tmp_path}/state\nENV_FILE=.env.production\nDB_SERVICE=db\n"
                      "CADDY_SERVICE=caddy\nMIN_PASSWORD_LENGTH=32\nMIN_DISTINCT_PASSWORD_CHARS=12\n"
                      "KNOWN_DEFAULT_PASSWORDS=postgres\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    # ps: one container; inspect: the api, holding nothing; exec: records the environment it passes on.
    docker.write_text(f"""#!/bin/bash
case "$1" in
  ps) echo c0ffee ;;
  inspect) case "$*" in *Config.Env*) echo "PATH=/usr/bin" ;; *) echo "/srq-hpn-api api" ;; esac ;;
  exec) printf '%s' "$POSTGRES_PASSWORD" > "{tmp_path}/exec-password"; cat >/dev/null ;;
esac
""")
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "SRQ_HPN_CONFIG": str(config)}
    return {"env": env, "marker": marker, "hostile": hostile, "dir": tmp_path}


def bash(server, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f'. "{PROGRAMS}/lib.sh"; {script}'], env=server["env"],
                          capture_output=True, text=True, timeout=30)


def test_env_value_reads_a_value_as_text(server):
    done = bash(server, 'env_value POSTGRES_PASSWORD; echo; env_value COMPOSE_FILE; echo; env_value SITE_NAME; echo; '
                        'env_value NEXT_PUBLIC_API_BASE_URL; echo "[$?]"; env_value NOT_THERE || echo "absent $?"')
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [server["hostile"], "compose.yml:/var/lib/srq-hpn/compose.deploy.yml",
                                        "Harbor", "[0]", "absent 1"]
    assert not server["marker"].exists()


def test_the_password_check_does_not_run_the_env_file(server):
    done = bash(server, f'. "{PROGRAMS}/checks.sh"; check_passwords')
    assert not server["marker"].exists(), "check_passwords ran a value of .env.production"
    # The value was judged as it is written (long and varied), not as the shell reads it ("x": too short).
    assert done.stdout.startswith("pass\t"), done.stdout + done.stderr


def test_the_superuser_check_does_not_run_the_env_file(server):
    done = bash(server, f'. "{PROGRAMS}/checks.sh"; check_api_superuser')
    assert not server["marker"].exists(), "check_api_superuser ran a value of .env.production"
    assert done.stdout.startswith("pass\t"), done.stdout + done.stderr


def test_the_app_role_program_does_not_run_the_env_file(server):
    done = subprocess.run(["bash", str(PROGRAMS / "srq-hpn-app-role"), "check"], env=server["env"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert not server["marker"].exists(), "srq-hpn-app-role ran a value of .env.production"
    assert (server["dir"] / "exec-password").read_text() == server["hostile"]
