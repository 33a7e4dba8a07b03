"""Scenario 16: a server deployed by the previous release of this project (which wrote
its own compose.yml and kept the app in src/) converges to the app-repository layout,
with every row of its database kept."""

import json
import subprocess
import tarfile

import pytest

from tests.integration.helpers import COMPOSE, assert_stack_is_up, containers, deploy
from tests.testbed import harness

# The last commit of the previous release (its deploy wrote templates/compose.yml.j2).
PREVIOUS_RELEASE = "8373280"


@pytest.fixture
def previous_release(tmp_path):
    """The previous release's files, from this repository's history."""
    known = subprocess.run(["git", "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], cwd=harness.REPO_ROOT,
                           capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"this clone has no commit {PREVIOUS_RELEASE} (the previous release): a shallow clone?")
    archive = tmp_path / "previous.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), PREVIOUS_RELEASE],
                   cwd=harness.REPO_ROOT, check=True)
    root = tmp_path / "previous"
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root


def test_previous_release_converges_with_its_rows(testbed, fresh_server, previous_release, tmp_path):
    server = fresh_server("previous")
    old_settings = {key: value for key, value in testbed.settings().items()}
    old_settings["srq_hpn_app_local_path"] = str(previous_release / "examples" / "srq-hpn-app")
    old = harness.run_pyinfra(server.inventory(**old_settings), "deploy.py", "-y", cwd=previous_release)
    assert old.returncode == 0, f"the previous release's deploy failed:\n{old.describe()}"
    assert server.exec("test -d /opt/srq-hpn/src && test -f /opt/srq-hpn/.state/source-revision", check=False)[0] == 0
    ca = harness.caddy_root_ca(server, tmp_path / "ca.crt")
    titles = [f"row {n} from the previous release" for n in range(3)]
    for title in titles:
        created = harness.https_get(server, "/api/events", ca, method="POST",
                                    headers={"content-type": "application/json"},
                                    body=json.dumps({"title": title, "starts_at": "2026-01-01T00:00:00Z"}).encode())
        assert created.status == 201, created.text
    _, volume_before = server.exec("docker inspect --format '{{range .Mounts}}{{.Name}} {{end}}' srq-hpn-db")

    deploy(server, testbed.settings())

    assert_stack_is_up(server)
    listed = [event["title"] for event in harness.https_get(server, "/api/events", ca).json()]
    assert all(title in listed for title in titles), listed
    _, volume_after = server.exec("docker inspect --format '{{range .Mounts}}{{.Name}} {{end}}' srq-hpn-db")
    assert volume_after.split() == volume_before.split() and "srq-hpn_postgres_data" in volume_after.split()
    assert server.exec("test -e /opt/srq-hpn/src || test -e /opt/srq-hpn/.state", check=False)[0] != 0
    _, compose = server.exec("head -1 /opt/srq-hpn/compose.yml")
    assert "Managed by srq-hpn-deploy" not in compose  # the app's own compose.yml now
    _, ps = server.exec(f"{COMPOSE} ps --format '{{{{.Name}}}}'")
    assert sorted(ps.split()) == sorted(name for name in containers(server))
