"""The testbed itself works: a fresh server boots systemd, pyinfra reaches it over SSH,
and from inside it the registry with the stand-in images answers."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from tests.testbed import harness

@pytest.fixture
def server(fresh_server):
    """A server of its own: the shared one gets Docker from the deploy scenarios."""
    return fresh_server("smoke")


def test_server_boots_systemd_like_a_fresh_vps(server):
    assert server.system_state() in ("running", "degraded"), server.failed_units()
    code, _ = server.exec("command -v docker", check=False)
    assert code != 0, "a fresh server must not have Docker before the deploy"
    _, sshd = server.exec("systemctl is-active ssh")
    assert sshd.strip() == "active"


def test_pyinfra_answers_facts_over_ssh(server, tmp_path):
    """As an operator would: the pyinfra CLI, an inventory file, a fact over SSH."""
    host, data = server.inventory_entry()
    (tmp_path / "inv.py").write_text(f"hosts = [({host!r}, {data!r})]\n")
    run = subprocess.run(
        [harness.pyinfra_command(), "inv.py", "fact", "server.LinuxDistribution", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, harness.describe_run(run)
    distribution = json.loads(run.stdout)["server.LinuxDistribution"][host]
    assert distribution["name"] == "Debian", distribution
    assert distribution["major"] == 13, distribution


def test_run_pyinfra_uses_the_project_inventory(server, testbed):
    run = harness.run_pyinfra(server.inventory(**testbed.settings()), "fact", "server.LinuxDistribution", "--json")
    assert run.returncode == 0, run.describe()
    distribution = run.json()["server.LinuxDistribution"]["127.0.0.1"]
    assert (distribution["name"], distribution["major"]) == ("Debian", 13)


def test_registry_serves_the_stand_ins_inside_the_network(server, testbed):
    _, catalog = server.exec(f"curl -fsS http://{harness.REGISTRY_HOST}/v2/_catalog")
    repositories = json.loads(catalog)["repositories"]
    for reference in harness.STAND_INS.values():
        assert reference.split(":")[0] in repositories, catalog
    assert testbed.image_refs["postgres"] == "postgres:16"  # what the apps' compose files name
    for name, reference in harness.STAND_INS.items():
        repository, _, tag = reference.partition(":")
        _, tags = server.exec(f"curl -fsS http://{harness.REGISTRY_HOST}/v2/{repository}/tags/list")
        assert tag in json.loads(tags)["tags"], textwrap.shorten(tags, 200)
