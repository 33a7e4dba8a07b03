"""The deploy's Docker step, simulated with pyinfra's @fake connector, on each supported platform.

The integration tests prove Debian 13 with distro packages on a real server; these
runs prove which commands the Docker step generates elsewhere (Docker's official
repository, Ubuntu 22.04/24.04, Debian 12), with no server: the facts are canned.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tasks.settings import ROOT

PYINFRA = str(Path(sys.executable).parent / "pyinfra")
RELEASES = {
    ("debian", "12"): ("Debian GNU/Linux", "bookworm"),
    ("debian", "13"): ("Debian GNU/Linux", "trixie"),
    ("ubuntu", "22.04"): ("Ubuntu", "jammy"),
    ("ubuntu", "24.04"): ("Ubuntu", "noble"),
}
# The Docker step of deploy.py, alone (the rest needs a real server: see tests/integration).
DOCKER_STEP = Path(__file__).with_name("docker_step.py")
OFFICIAL = "docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin"


def simulate(tmp_path, distro_id, version, method, extra="", packages=""):
    name, codename = RELEASES[(distro_id, version)]
    inventory = tmp_path / "inventory.py"
    inventory.write_text(textwrap.dedent(f"""
        hosts = [("@fake/server", {{
            "fake_delay": 0,
            "fake_delay_jitter": 0,
            "srq_hpn_domain": "example.com",
            "docker_install_method": {method!r},
            {extra}
            "fake_responses": {{
                "*-release": ["/etc/os-release", 'NAME="{name}"', "ID={distro_id}",
                              'VERSION_ID="{version}"', "VERSION_CODENAME={codename}", "---"],
                "dpkg --print-architecture": "amd64",
                {packages}
            }},
        }})]
    """))
    result = subprocess.run(
        [PYINFRA, str(inventory), str(DOCKER_STEP), "-y", "-vv", "--debug", "--group-data", "group_data"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    commands = [line.split(">>> ", 1)[1] for line in (result.stdout + result.stderr).splitlines() if ">>> " in line]
    return result, commands


def installs(commands):
    return [c for c in commands if "apt-get" in c and " install " in c]


@pytest.mark.parametrize("distro_id, version", [("debian", "12"), ("debian", "13"), ("ubuntu", "22.04"), ("ubuntu", "24.04")])
def test_official_repository_on_every_platform(tmp_path, distro_id, version):
    result, commands = simulate(tmp_path, distro_id, version, "official")
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(f"https://download.docker.com/linux/{distro_id}/gpg" in c for c in commands)
    assert any(c.endswith("/etc/apt/keyrings/docker.asc") and c.startswith("mv ") for c in commands)
    assert "simulating put_file on @fake/server: /etc/apt/sources.list.d/docker.list" in result.stderr
    assert any(OFFICIAL in c and "--no-install-recommends" in c for c in installs(commands)), installs(commands)
    assert "systemctl enable docker.service" in commands



@pytest.mark.parametrize(
    "distro_id, version, packages",
    [
        ("debian", "13", "docker.io docker-cli docker-compose docker-buildx"),
        ("ubuntu", "22.04", "docker.io docker-compose-v2 docker-buildx"),
        ("ubuntu", "24.04", "docker.io docker-compose-v2 docker-buildx"),
    ],
)
def test_distribution_packages(tmp_path, distro_id, version, packages):
    result, commands = simulate(tmp_path, distro_id, version, "distro")
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(packages in c for c in installs(commands)), installs(commands)
    assert not any("download.docker.com" in c for c in commands)


def test_debian_12_distro_packages_are_refused_before_any_change(tmp_path):
    result, commands = simulate(tmp_path, "debian", "12", "distro")
    assert result.returncode != 0
    assert "debian 12 has no Docker Compose v2 package of its own" in result.stdout + result.stderr
    assert not any(c.startswith(("mkdir", "apt-get", "chmod", "systemctl")) for c in commands), commands


def test_insecure_registries_reach_daemon_json_before_docker_starts(tmp_path):
    result, commands = simulate(tmp_path, "debian", "13", "distro",
                                extra='"docker_insecure_registries": ["registry.test:5000"],')
    assert result.returncode == 0, result.stderr[-3000:]
    daemon = result.stderr.index("simulating put_file on @fake/server: /etc/docker/daemon.json")
    install = result.stderr.index("install --no-install-recommends")
    assert daemon < install


def test_a_fresh_install_starts_pulling_the_apps_images_once_docker_runs(tmp_path):
    result, commands = simulate(tmp_path, "debian", "13", "distro",
                                extra='"test_pulled_images": ["postgres:16", "caddy:2"],')
    assert result.returncode == 0, result.stderr[-3000:]
    pulls = [i for i, c in enumerate(commands) if "docker pull" in c]
    assert len(pulls) == 1, commands
    assert "docker pull -q postgres:16; rm -f /run/srq-hpn-early-pull.pid; docker pull -q caddy:2" in commands[pulls[0]]
    assert commands[pulls[0]].rstrip().endswith("&")
    started = max(i for i, c in enumerate(commands) if "systemctl" in c and "docker" in c)
    (install,) = [i for i, c in enumerate(commands) if "apt-get" in c and " install " in c]
    assert install < started < pulls[0]
    assert "jq pigz docker.io docker-cli docker-compose docker-buildx" in commands[install]


def test_no_early_pull_where_docker_was_already_installed(tmp_path):
    dpkg = "\n".join(f"ii  {name}  1.0  amd64  x" for name in
                      ["docker.io", "docker-cli", "docker-compose", "docker-buildx", "ca-certificates", "curl",
                       "openssl", "iproute2", "jq", "pigz"])
    result, commands = simulate(tmp_path, "debian", "13", "distro",
                                extra='"test_pulled_images": ["postgres:16"],',
                                packages=f'"dpkg -l": {dpkg!r},')
    assert result.returncode == 0, result.stderr[-3000:]
    assert not installs(commands), commands
    assert not any("docker pull" in c for c in commands), commands


def test_log_shipping_installs_journal_upload_with_docker(tmp_path):
    result, commands = simulate(tmp_path, "debian", "13", "distro",
                                extra='"log_shipping_url": "http://logs.internal:19532",')
    assert result.returncode == 0, result.stderr[-3000:]
    (install,) = installs(commands)
    assert "jq pigz systemd-journal-remote docker.io docker-cli" in install
