"""Scenario 10: the deploy as a non-root SSH user with sudo (`--sudo`), as many servers are run."""

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
