"""Backups, drill and restore: the settings' rules, the files rendered for the server,
the facts' parsing and the names of pre-migration backups (pure parts)."""

import json
import subprocess
from dataclasses import replace

import pytest

from tasks import layout, render
from tasks.backup_settings import backup_max_age_hours, offsite_target, restore_problems
from tasks.facts import Backups, CalendarCheck, LastDrill
from tasks.hostkeys import known_hosts_line
from tasks.plan import migration_label
from tasks.settings import generate_password, with_defaults
from tasks.validation import check_settings

GOOD = {"srq_hpn_domain": "example.com"}
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc0nGhvYmVmb3JlLXRoZS1maXJzdC1jb25uZWN0aW9u"


def problems(defaults, data=None, environ=None):
    return check_settings({**GOOD, **(data or {})}, defaults, environ or {})


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "backup-key"
    path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    return str(path)


def test_default_backup_settings_pass(defaults):
    assert problems(defaults) == []


@pytest.mark.parametrize(
    "data, message",
    [
        ({"backup_dir": "backups"}, "backup_dir must be an absolute path of its own"),
        ({"backup_dir": "/var/backups"}, "backup_dir must be an absolute path of its own"),
        ({"backup_dir": "/opt/srq-hpn/backups"}, "backup_dir must be outside srq_hpn_app_dir"),
        ({"backup_dir": "/var/lib/srq-hpn/b"}, "backup_dir must be outside srq_hpn_state_dir"),
        ({"backup_schedule": "daily\nExecStart=/bin/sh"}, "backup_schedule must be a systemd OnCalendar value"),
        ({"backup_keep_daily": 0}, "backup_keep_daily must be a positive whole number"),
        ({"backup_offsite_repository": "s3:bucket/x", "backup_offsite_ssh_key": __file__},
         "backup_offsite_repository must be a restic SFTP repository"),
        ({"backup_offsite_repository": "sftp:u@h:/r", "backup_offsite_accept_new_host_key": True},
         "backup_offsite_ssh_key is required"),
        ({"backup_offsite_repository": "sftp:u@h:/r", "backup_offsite_ssh_key": "/nonexistent/key",
          "backup_offsite_host_key": HOST_KEY}, "backup_offsite_ssh_key '/nonexistent/key' is not a readable file"),
        ({"backup_offsite_repository": "sftp:u@h:/r", "backup_offsite_ssh_key": __file__},
         "backup_offsite_host_key is required with backup_offsite_repository (h): whoever answers the server's first "
         "connection would receive every backup"),
        ({"backup_offsite_host_key": "just-a-host"}, "backup_offsite_host_key must be the server's public host key"),
        ({"backup_offsite_host_key": "h ssh-ed25519 AAAAC3Nza\nh2 ssh-rsa AAAAB3"},
         "backup_offsite_host_key must be the server's public host key"),
        ({"backup_offsite_check_subset": "all"}, "backup_offsite_check_subset must be a share of the data"),
        ({"drill_from": "cloud"}, "drill_from must be one of local, offsite"),
        ({"drill_from": "offsite"}, "drill_from = 'offsite' needs backup_offsite_repository"),
        ({"drill_backup": "../etc"}, "drill_backup must name a backup"),
        ({"restore_backup": "srq-hpn-2025"}, "restore_backup must name a backup"),
        ({"backup_retention": 3}, "unknown setting 'backup_retention'"),
        ({"restore_confrim": "x"}, "unknown setting 'restore_confrim' (did you mean 'restore_confirm'?)"),
    ],
)
def test_backup_rules(defaults, data, message):
    found = problems(defaults, data)
    assert len(found) == 1 and message in found[0], found


def test_offsite_settings_and_password(defaults, key_file):
    data = {"backup_offsite_repository": "sftp://restic@backup.example.com:2222//srv/restic/srq-hpn",
            "backup_offsite_ssh_key": key_file, "drill_from": "offsite", "backup_offsite_host_key": HOST_KEY}
    assert problems(defaults, data) == []
    trusting = {**data, "backup_offsite_host_key": "", "backup_offsite_accept_new_host_key": True}
    assert problems(defaults, trusting) == []
    assert problems(defaults, data, {"RESTIC_PASSWORD": generate_password()}) == []
    weak = problems(defaults, data, {"RESTIC_PASSWORD": "changeme"})
    assert weak == ["RESTIC_PASSWORD is a known default or placeholder; generate one: openssl rand -base64 32"]


def test_offsite_targets():
    short = offsite_target("sftp:restic@backup.example.com:/srv/restic/srq-hpn")
    assert (short.user, short.host, short.port, short.path) == ("restic", "backup.example.com", 22, "/srv/restic/srq-hpn")
    url = offsite_target("sftp://restic@10.0.0.5:2222//srv/restic")
    assert (url.user, url.host, url.port, url.path) == ("restic", "10.0.0.5", 2222, "/srv/restic")
    assert offsite_target("sftp:host:/no-user") is None
    assert offsite_target("sftp:u@h:/path; rm -rf /") is None


def test_a_restore_needs_the_backup_and_the_confirmation(defaults):
    merged = with_defaults({**GOOD, "restore_backup": "srq-hpn-20260101T020000Z"}, defaults)
    assert "restore_confirm must be the domain (example.com) or the database's name (srq_hpn)" in \
        restore_problems(merged)[0]
    assert "(got 'example.org')" in restore_problems({**merged, "restore_confirm": "example.org"})[0]
    assert restore_problems({**merged, "restore_confirm": "example.com"}) == []
    assert restore_problems({**merged, "restore_confirm": "srq_hpn"}) == []
    assert restore_problems({**merged, "restore_backup": "", "restore_confirm": "srq_hpn"})[0].startswith(
        "restore_backup is required")


def test_backup_units(settings):
    units = render.backup_units(replace(settings, backup_schedule="*-*-* 03:15:00"))
    timer, service = units[layout.BACKUP_TIMER], units[layout.BACKUP_SERVICE]
    assert "\nOnCalendar=*-*-* 03:15:00\n" in timer and "\nPersistent=true\n" in timer
    assert "\nWantedBy=timers.target\n" in timer
    assert "\nType=oneshot\n" in service and f"\nExecStart={layout.LIB_DIR}/srq-hpn-backup\n" in service


def test_deploy_env_tells_the_backup_programs_what_they_need(settings, tmp_path):
    text = render.deploy_env(replace(settings, backup_keep_weekly=2))
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert values["BACKUP_DIR"] == "/var/backups/srq-hpn" and values["KEEP_WEEKLY"] == "2"
    assert values["DB_NAME"] == "srq_hpn" and values["DB_APP_USER"] == "srq_hpn_app"
    assert values["OFFSITE_REPOSITORY"] == "''" and values["OFFSITE_CHECK_SUBSET"] == "'10%'"


def test_the_backup_directory_setting_is_what_the_server_programs_read(settings, tmp_path):
    """The programs source deploy.env: the last assignment of a name wins, so the setting's
    value must be the only one."""
    path = tmp_path / "deploy.env"
    path.write_text(render.deploy_env(replace(settings, backup_dir="/srv/srq-backups/")))
    done = subprocess.run(["bash", "-c", f'. {path}; printf %s "$BACKUP_DIR"'], capture_output=True, text=True, check=True)
    assert done.stdout == "/srv/srq-backups"
    names = [line.split("=", 1)[0] for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")]
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_offsite_ssh_configuration(settings):
    pinned = render.offsite_ssh_config(replace(settings, backup_offsite_repository="sftp://restic@b.example.com:2222//r",
                                               backup_offsite_host_key=HOST_KEY))
    assert f"Host {layout.OFFSITE_SSH_HOST}\n" in pinned
    for line in ("HostName b.example.com", "User restic", "Port 2222", f"IdentityFile {layout.OFFSITE_SSH_KEY}",
                 f"UserKnownHostsFile {layout.OFFSITE_KNOWN_HOSTS}", "StrictHostKeyChecking yes", "BatchMode yes"):
        assert f"\t{line}\n" in pinned
    # Trust on first use only when the operator opted in.
    trusting = render.offsite_ssh_config(replace(settings, backup_offsite_repository="sftp:r@b:/r",
                                                 backup_offsite_accept_new_host_key=True))
    assert "\tStrictHostKeyChecking accept-new\n" in trusting


def test_the_backup_hosts_key_is_written_for_the_host_ssh_looks_it_up_by():
    assert known_hosts_line(f"anything.example {HOST_KEY} comment", "b.example.com") == f"b.example.com {HOST_KEY}\n"
    assert known_hosts_line(HOST_KEY, "10.0.0.5", 2222) == f"[10.0.0.5]:2222 {HOST_KEY}\n"


def test_caddyfile_answers_503_at_once_during_maintenance(settings):
    text = render.caddyfile(settings)
    assert "@maintenance file {\n\t\troot /data\n\t\ttry_files /srq-hpn-maintenance\n\t}" in text
    assert 'Retry-After "30"' in text
    # In both handle blocks, before the proxy (Caddy orders respond before reverse_proxy).
    assert text.count('respond @maintenance "') == 2


def test_pre_migration_backups_are_named_after_the_revisions():
    assert migration_label(["0002"], ["0003"]) == "pre-migration-0002-to-0003"
    assert migration_label(["a1", "b2"], ["c3"]) == "pre-migration-a1+b2-to-c3"
    assert migration_label(["x/y z"], ["0003"]) == "pre-migration-x_y_z-to-0003"
    assert len(migration_label(["a" * 60], ["b" * 60])) == 80


def manifest(name, time, sizes, verified=True, tables=None):
    return json.dumps({"name": name, "label": "", "time": time, "verified": verified,
                       "files": {f: {"bytes": b, "sha256": "x"} for f, b in sizes.items()},
                       "alembic_revision": ["0002"], "tables": tables or {"public.events": 3}})


def test_backups_fact():
    fact = Backups()
    fact.command(backup_dir="/var/backups/srq-hpn")
    now = 1_700_000_000  # 2023-11-14T22:13:20Z
    output = [
        f"now {now}",
        "dir /var/backups/srq-hpn",
        "backup srq-hpn-20231113T020000Z db.dump=100,globals.sql=10, "
        + manifest("srq-hpn-20231113T020000Z", "2023-11-13T02:00:00Z", {"db.dump": 100, "globals.sql": 10}),
        "backup srq-hpn-20231114T020000Z db.dump=50,globals.sql=10, "
        + manifest("srq-hpn-20231114T020000Z", "2023-11-14T02:00:00Z", {"db.dump": 100, "globals.sql": 10}),
    ]
    result = fact.process(output)
    assert result["count"] == 2 and result["newest"] == "srq-hpn-20231114T020000Z"
    first, newest = result["backups"]
    assert first["verified"] is True and first["bytes"] == 110 and first["revision"] == ["0002"]
    assert first["rows"] == 3 and first["age_hours"] == 44.2
    assert newest["verified"] is False  # db.dump is smaller than its manifest says
    assert result["newest_age_hours"] == 20.2 and result["stale"] is False
    # The server's limit for its schedule (deploy.env's BACKUP_MAX_AGE_HOURS), as the command reports it.
    assert fact.process(["stale_hours 12", *output])["stale"] is True
    assert "BACKUP_MAX_AGE_HOURS" in fact.command() and 'echo "stale_hours 12"' in fact.command(stale_hours=12)
    assert Backups().process(["now 1", "dir /x"])["stale"] is True


def test_last_drill_fact():
    record = {"time": "2023-11-14T20:13:20Z", "backup": "srq-hpn-20231114T020000Z", "result": "passed", "checks": []}
    result = LastDrill().process(["now 1700000000", json.dumps(record)])
    assert result["result"] == "passed" and result["age_hours"] == 2.0
    assert LastDrill().process(["now 1700000000", ""]) is None


def test_calendar_check_fact():
    assert CalendarCheck().process(["ok", "  Original form: daily", "Next elapse: Sat 2026-03-07 00:00:00 UTC",
                                    "   From now: 7h left", "   Iter. #2: Sun 2026-03-08 00:00:00 UTC"]) == {
        "ok": True, "next": "Sat 2026-03-07 00:00:00 UTC",
        "elapses": ["Sat 2026-03-07 00:00:00 UTC", "Sun 2026-03-08 00:00:00 UTC"]}
    refused = CalendarCheck().process(["error", "Failed to parse calendar specification 'dialy': Invalid argument"])
    assert refused["ok"] is False and "dialy" in refused["error"][0]


def test_a_backup_is_stale_after_its_schedules_longest_gap():
    daily = ["Sat 2026-03-07 00:00:00 UTC", "Sun 2026-03-08 00:00:00 UTC", "Mon 2026-03-09 00:00:00 UTC"]
    assert backup_max_age_hours(daily) == 26
    weekly = ["Mon 2026-11-30 03:00:00 UTC", "Mon 2026-12-07 03:00:00 UTC", "Mon 2026-12-14 03:00:00 UTC"]
    assert backup_max_age_hours(weekly) == 7 * 24 + 2
    # Mondays and Thursdays: the longer of the two gaps.
    twice = ["Mon 2026-11-30 03:00:00 UTC", "Thu 2026-12-03 03:00:00 UTC", "Mon 2026-12-07 03:00:00 UTC"]
    assert backup_max_age_hours(twice) == 4 * 24 + 2
    assert backup_max_age_hours([]) == 26  # systemd-analyze could not tell


def test_deploy_env_carries_the_schedules_backup_age_limit(settings):
    text = render.deploy_env(replace(settings, backup_schedule="weekly"), backup_max_age_hours=170)
    assert "\nBACKUP_MAX_AGE_HOURS=170\n" in text
