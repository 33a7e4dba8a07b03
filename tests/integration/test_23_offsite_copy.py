"""Scenario 23, on a server of its own and a second server as the backup host: the
off-server copy (restic over SFTP). Setting it up needs the backup host's key (refused
before any change without it, and refused on the server when another key answers) and
RESTIC_PASSWORD the first time (refused before any change without it); with it, the deploy installs the SSH key and
the password root-only, never printing the password, and creates the encrypted
repository. After a backup run the repository on the backup host holds it; it does
not open without the password; a drill from the copy passes; a second deploy changes
nothing."""

import subprocess

from tests.integration.helpers import deploy, failed_deploy, run_command, take_backup
from tests.testbed import harness

BACKUP_USER = "srqbackup"


def test_backups_are_copied_off_the_server_and_drill_from_there(fresh_server, testbed, tmp_path):
    server = fresh_server("offsite")
    backup_host = fresh_server("backup-host")
    key = harness.generate_ssh_key(tmp_path / "offsite-key")
    backup_host.exec(
        f"useradd -m -s /bin/bash {BACKUP_USER} && install -d -m 700 -o {BACKUP_USER} -g {BACKUP_USER} "
        f"/home/{BACKUP_USER}/.ssh && printf '%s\\n' '{key.with_suffix('.pub').read_text().strip()}' "
        f"> /home/{BACKUP_USER}/.ssh/authorized_keys && chown {BACKUP_USER}: /home/{BACKUP_USER}/.ssh/authorized_keys "
        f"&& chmod 600 /home/{BACKUP_USER}/.ssh/authorized_keys"
    )
    repository = f"sftp:{BACKUP_USER}@{backup_host.network_alias}:/home/{BACKUP_USER}/restic"
    host_key = backup_host.exec("cat /etc/ssh/ssh_host_ed25519_key.pub")[1].strip()
    settings = testbed.settings(backup_offsite_repository=repository, backup_offsite_ssh_key=str(key),
                                backup_offsite_host_key=host_key)

    # Whoever answers the first connection would receive every backup: no key, no copy.
    unpinned = failed_deploy(server, {**settings, "backup_offsite_host_key": ""})
    assert "backup_offsite_host_key is required with backup_offsite_repository" in unpinned.output
    refused = failed_deploy(server, settings)
    assert "RESTIC_PASSWORD is required to set up the off-server copy" in refused.output
    assert server.exec("command -v docker", check=False)[0] != 0, "the refused deploy changed the server"

    password = subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True, text=True,
                              check=True).stdout.strip()
    # A key that is not the backup host's (another server answering in its place): refused.
    impostor = server.exec("cat /etc/ssh/ssh_host_ed25519_key.pub")[1].strip()
    wrong = failed_deploy(server, {**settings, "backup_offsite_host_key": impostor}, env={"RESTIC_PASSWORD": password})
    assert "Host key verification failed" in wrong.output, wrong.describe()
    assert password not in wrong.output
    assert backup_host.exec(f"test -e /home/{BACKUP_USER}/restic", check=False)[0] != 0

    run = deploy(server, settings, "-vvv", env={"RESTIC_PASSWORD": password})
    assert password not in run.output
    _, modes = server.exec("stat -c '%a %U %n' /root/.ssh/srq-hpn-backup-key /etc/srq-hpn/backup/restic-password")
    assert [line.split()[:2] for line in modes.splitlines()] == [["600", "root"], ["600", "root"]]
    _, held = backup_host.exec(f"ls /home/{BACKUP_USER}/restic")
    assert {"config", "data", "keys", "snapshots"} <= set(held.split())

    name = take_backup(server)
    _, journal = server.exec("journalctl -u srq-hpn-backup.service -n 20 --no-pager")
    assert f"copied {name} off the server" in journal
    _, snapshots = server.exec("/usr/local/lib/srq-hpn/srq-hpn-offsite snapshots")
    assert name in [line.split()[0] for line in snapshots.splitlines()]
    # Encrypted: without the password the repository does not open.
    code, output = server.exec(
        f"printf wrong-password > /tmp/wrong && RESTIC_PASSWORD_FILE=/tmp/wrong restic -r {repository} "
        "-o 'sftp.command=ssh -F /etc/srq-hpn/backup/ssh_config srq-hpn-offsite -s sftp' snapshots; "
        "code=$?; rm -f /tmp/wrong; exit $code",
        check=False)
    assert code != 0 and "wrong password" in output

    drill = run_command(server, settings, "drill.py", "drill_from=offsite")
    assert drill.returncode == 0, drill.describe()
    assert f"Restore drill of {name} (off-server copy): PASSED" in drill.output
    assert any("restic check (10% of the data)" in line and line.endswith("ok") for line in drill.output.splitlines())

    again = deploy(server, settings)
    assert again.changed_operations() == []
