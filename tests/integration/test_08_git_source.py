"""Scenario 8: the app's source from a git repository instead of an upload.

The repository is a bare repository on the server itself (no network needed); the
deploy clones it, rebuilds, and a second run with no new commit changes nothing."""

import subprocess
import tarfile

import pytest

from tests.integration.helpers import assert_stack_is_up, deploy
from tests.testbed import harness

REPO = "/srv/srq-hpn-app.git"


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def bare_repository(server, tmp_path):
    work = tmp_path / "app"
    subprocess.run(["cp", "-r", str(harness.REPO_ROOT / "examples" / "srq-hpn-app"), str(work)], check=True)
    git("init", "-q", "-b", "release", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "sample app", cwd=work)
    git("clone", "-q", "--bare", str(work), str(tmp_path / "app.git"), cwd=tmp_path)
    archive = tmp_path / "repo.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "app.git", arcname="srq-hpn-app.git")
    server.container.put_archive("/srv", archive.read_bytes())
    return work


def test_deploy_from_a_git_branch_then_nothing_changes(deployed, server, testbed, caddy_ca, bare_repository, tmp_path):
    key = harness.generate_ssh_key(tmp_path / "deploy-key")
    settings = {**testbed.settings(), "srq_hpn_app_source": "git", "srq_hpn_app_git_repo": REPO,
                "srq_hpn_app_git_branch": "release", "srq_hpn_app_git_deploy_key": str(key)}
    run = deploy(server, settings)
    changed = run.changed_operations()
    assert any("at the newest release" in name for name in changed), changed
    _, head = server.exec("git -C /opt/srq-hpn rev-parse HEAD")
    _, status = server.exec("git -C /opt/srq-hpn status --porcelain")
    assert status.strip() == "", f"the deploy left the checkout unclean:\n{status}"
    _, branch = server.exec("git -C /opt/srq-hpn symbolic-ref --short HEAD")
    assert branch.strip() == "release"  # on the branch, so the operator's `git pull` works
    expected = subprocess.run(["git", "rev-parse", "HEAD"], cwd=bare_repository, capture_output=True, text=True).stdout
    assert head.strip() == expected.strip()
    # The operator's own `git pull` on the server uses the deploy key, and checks the host's key.
    _, ssh_command = server.exec("git -C /opt/srq-hpn config core.sshCommand")
    assert ssh_command.strip() == ("ssh -i /root/.ssh/srq-hpn-deploy-key -o IdentitiesOnly=yes -o "
                                   "UserKnownHostsFile=/etc/srq-hpn/git_known_hosts -o StrictHostKeyChecking=yes")
    assert server.exec("stat -c '%a %U' /root/.ssh/srq-hpn-deploy-key")[1].strip() == "600 root"
    assert_stack_is_up(server)
    assert harness.https_get(server, "/api/health", caddy_ca).status == 200

    assert deploy(server, settings).changed_operations() == []

    # Back to the uploaded checkout, for the scenarios that follow.
    deploy(server, testbed.settings())
    assert deploy(server, testbed.settings()).changed_operations() == []
