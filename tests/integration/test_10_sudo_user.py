"""Scenario 10: the deploy as a non-root SSH user with sudo (`--sudo`), as many servers are run.
A secret on its way to the server never sits in a file another user can read, and nothing
of it is left behind when it cannot be put in place."""

from tasks.settings import generate_password
from tests.integration.helpers import assert_no_traceback
from tests.testbed import harness

def test_deploy_through_sudo(testbed, fresh_server):
    server = fresh_server("sudo")
    server.exec(
        "useradd --create-home --shell /bin/bash deploy"
        " && install -d -m 700 -o deploy -g deploy /home/deploy/.ssh"
        " && install -m 600 -o deploy -g deploy /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys"
        " && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy"
    )
    inventory = server.inventory(**{**testbed.settings(), "ssh_user": "deploy"})
    run = harness.run_pyinfra(inventory, "deploy.py", "-y", "--sudo")
    assert run.returncode == 0, run.describe()
    assert "answer through Caddy" in run.output
    _, mode = server.exec("stat -c '%a %U %G' /opt/srq-hpn/.env.production")
    assert mode.strip() == "600 root root"
    # The secret file's temporary upload went through the user's home, and is gone.
    _, leftovers = server.exec("ls -A /home/deploy; ls -A /tmp")
    assert ".srq-hpn-upload" not in leftovers, leftovers
    again = harness.run_pyinfra(inventory, "deploy.py", "-y", "--sudo", "--json")
    assert again.returncode == 0, again.describe()
    assert again.changed_operations() == []

    # A rotated password whose file cannot be put in place (the app directory read-only):
    # the deploy fails, saying so, and leaves the password nowhere on the server.
    rotated = generate_password()
    server.exec("mount --bind /opt/srq-hpn /opt/srq-hpn && mount -o remount,ro,bind /opt/srq-hpn")
    try:
        failed = harness.run_pyinfra(inventory, "deploy.py", "-y", "--sudo", env={"POSTGRES_APP_PASSWORD": rotated})
    finally:
        server.exec("umount /opt/srq-hpn")
    assert failed.returncode != 0, failed.describe()
    assert_no_traceback(failed)
    assert "could not put /opt/srq-hpn/.env.production in place" in failed.output, failed.describe()
    assert rotated not in failed.output
    _, found = server.exec(f"grep -rlF -e '{rotated}' /home /tmp /root /opt /var/lib/srq-hpn /etc/srq-hpn || true")
    assert found.strip() == "", f"the password was left on the server in: {found}"
    _, staging = server.exec("ls -A /tmp /home/deploy")
    assert ".srq-hpn-stage-" not in staging and ".srq-hpn-upload" not in staging, staging
    # The next run converges: nothing to change, the server's password kept.
    settled = harness.run_pyinfra(inventory, "deploy.py", "-y", "--sudo", "--json")
    assert settled.returncode == 0, settled.describe()
    assert settled.changed_operations() == []
