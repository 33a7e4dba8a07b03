"""Point-in-time recovery's own logic: the db service's command with archiving, the plan's
WAL steps and restart reason, the schema revision at a time, the recoverable windows, the
settings' rules, and the archive's shell functions run for real with bash."""

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from tasks import deploy_layer, layout, render
from tasks.appspec import ContractError
from tasks.backup_settings import check_recovery, restore_problems
from tasks.facts.backups import recoverable_windows
from tasks.pitr import revision_at
from tasks.plan import wal_plan
from tasks.settings import load_defaults

PROGRAMS = render.SERVER_PROGRAMS
WAL = deploy_layer.WalArchive("/var/backups/srq-hpn/wal", 30)


def test_the_db_command_gets_archiving_after_its_own_settings():
    assert deploy_layer.archiving_command(None, WAL) == [
        "postgres", "-c", "wal_level=replica", "-c", "archive_mode=on",
        "-c", f"archive_command=sh {layout.WAL_LIB_MOUNT}/archive-wal.sh %p %f", "-c", "archive_timeout=30"]
    own = ["postgres", "-c", "shared_buffers=256MB", "-c", "wal_level=logical"]
    command = deploy_layer.archiving_command(own, WAL)
    assert command[:len(own)] == own and "wal_level=replica" not in command and command[-1] == "archive_timeout=30"
    with pytest.raises(ContractError, match="does not start postgres directly"):
        deploy_layer.archiving_command(["sh", "-c", "exec postgres"], WAL)


def test_the_layer_mounts_the_archive_and_the_programs_into_the_db_service():
    config = {"name": "srq-hpn", "services": {name: {} for name in layout.SERVICES}}
    layer = deploy_layer.build_layer(config, app_dir="/opt/srq-hpn", caddy_dir="/var/lib/srq-hpn/caddy",
                                     caddyfile_template=False, db_on_localhost=False, release="r1", tags={},
                                     wal=WAL)
    db = layer.document["services"]["db"]
    assert {"type": "bind", "source": WAL.directory, "target": layout.WAL_MOUNT} in db["volumes"]
    assert {"type": "bind", "source": layout.LIB_DIR, "target": layout.WAL_LIB_MOUNT, "read_only": True} in db["volumes"]
    assert "archive_mode=on" in db["command"]
    without = deploy_layer.build_layer(config, app_dir="/opt/srq-hpn", caddy_dir="/var/lib/srq-hpn/caddy",
                                       caddyfile_template=False, db_on_localhost=False, release="r1", tags={})
    assert "command" not in without.document["services"].get("db", {})


def test_the_archive_command_writes_where_the_layer_mounts_the_archive():
    text = (PROGRAMS / "archive-wal.sh").read_text()
    assert f"dir={layout.WAL_MOUNT}/$id/wal" in text
    assert layout.WAL_ARCHIVE_COMMAND.split()[1] == f"{layout.WAL_LIB_MOUNT}/archive-wal.sh"


def test_the_plan_restarts_the_database_once_to_turn_archiving_on_and_then_takes_a_base_backup():
    running_off = {"archive_mode": "off", "owned": False, "system_identifier": "1", "base_backups": 0}
    steps, why = wal_plan(running_off, True, "its configuration changed")
    assert why == "WAL archiving turned on: it restarts once" and set(steps) == {"setup", "base"}
    steps, why = wal_plan(None, True, "not created yet")
    assert why == "not created yet" and set(steps) == {"setup", "base"}
    ready = {"archive_mode": "on", "owned": True, "system_identifier": "1", "base_backups": 2}
    assert wal_plan(ready, True, None) == ({}, None)
    assert wal_plan({**ready, "owned": False}, True, None)[0].keys() == {"setup"}
    assert wal_plan({**ready, "base_backups": 0}, True, None)[0].keys() == {"base"}
    assert wal_plan(ready, False, "its configuration changed") == ({}, "WAL archiving turned off: it restarts once")


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


BACKUPS = [
    {"name": "srq-hpn-20260301T020000Z", "time": "2026-03-01T02:00:00Z", "revision": ["0002"]},
    {"name": "srq-hpn-20260301T100000Z-pre-migration-0002-to-0003", "time": "2026-03-01T10:00:00Z",
     "revision": ["0002"]},
]
MIGRATIONS = [
    {"time": "2026-03-01T10:00:05Z", "from": "0002", "to": "0003", "result": "migrated", "duration_s": 2.5},
    {"time": "2026-03-01T11:00:00Z", "from": "0003", "to": "0004", "result": "stopped", "duration_s": None},
]


def test_the_revision_at_a_time_comes_from_the_backups_and_the_migrations():
    assert revision_at(BACKUPS, MIGRATIONS, at("2026-03-01T05:00:00Z")) == (["0002"], "backup srq-hpn-20260301T020000Z")
    revision, source = revision_at(BACKUPS, MIGRATIONS, at("2026-03-01T12:00:00Z"))
    assert revision == ["0003"] and "migration to 0003" in source  # the stopped one changed nothing
    revision, why = revision_at(BACKUPS, MIGRATIONS, at("2026-03-01T10:00:06Z"))
    assert revision is None and "falls during the migration 0002 -> 0003" in why
    assert revision_at(BACKUPS, MIGRATIONS, at("2026-02-01T00:00:00Z"))[0] is None


def test_the_recoverable_window_runs_from_the_oldest_base_backup_to_the_newest_segment():
    newest = int(at("2026-03-08T09:30:00Z").timestamp())
    windows = recoverable_windows({
        "111": {"bases": [{"end_time": "2026-03-02T02:00:31Z"}, {"end_time": "2026-03-01T02:00:31Z"}],
                "newest": newest, "segments": 40},
        "222": {"bases": [], "newest": None, "segments": 0},
    })
    assert windows[0] == {"system_identifier": "111", "earliest": "2026-03-01T02:00:31Z",
                          "latest": "2026-03-08T09:30:00Z", "base_backups": 2, "segments": 40, "recoverable": True}
    assert windows[1]["recoverable"] is False


def merged(**values) -> dict:
    return {**load_defaults(), "srq_hpn_domain": "example.org", **values}


def test_the_point_in_time_settings_are_checked():
    assert check_recovery(merged(restore_time="2026-03-01T14:05:00Z")) == []
    assert check_recovery(merged(restore_time="2026-03-01 14:05")) == [
        "restore_time must be a UTC time such as 2026-03-01T14:05:00Z (or latest), got '2026-03-01 14:05'"]
    assert any("exclusive" in p for p in check_recovery(merged(drill_time="2026-03-01T14:05:00Z",
                                                               drill_backup="srq-hpn-20260301T020000Z")))
    assert any("needs the WAL archive" in p for p in check_recovery(merged(drill_time="2026-03-01T14:05:00Z",
                                                                           backup_wal_archive=False)))
    assert any("restore_from = 'offsite' goes with restore_time" in p for p in check_recovery(
        merged(restore_from="offsite")))
    assert restore_problems(merged(restore_time="2026-03-01T14:05:00Z", restore_confirm="example.org")) == []


needs_tools = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("jq")), reason="needs bash and jq")


def wal_shell(script: str, tmp_path) -> subprocess.CompletedProcess:
    config = tmp_path / "deploy.env"
    config.write_text(f"STATE_DIR={tmp_path}/state\nBACKUP_DIR={tmp_path}/backups\nWAL_DIR={tmp_path}/wal\n")
    return subprocess.run(
        ["bash", "-c", f'. "{PROGRAMS}/lib.sh"; . "{PROGRAMS}/backup.sh"; . "{PROGRAMS}/wal.sh"; {script}'],
        capture_output=True, text=True, env={"SRQ_HPN_CONFIG": str(config), "PATH": "/usr/bin:/bin"})


def cluster(tmp_path, segments: list[str], bases: dict[str, dict]):
    directory = tmp_path / "wal" / "7441"
    (directory / "wal").mkdir(parents=True)
    for name in segments:
        (directory / "wal" / f"{name}.gz").write_bytes(b"")
    for name, manifest in bases.items():
        (directory / "base" / name).mkdir(parents=True)
        (directory / "base" / name / "manifest.json").write_text(json.dumps({"name": name, **manifest}))
    return directory


@needs_tools
def test_the_first_missing_segment_is_named(tmp_path):
    directory = cluster(tmp_path, ["0000000100000000000000FE", "0000000100000000000000FF",
                                   "000000010000000100000000", "000000010000000100000002"], {})
    done = wal_shell(f'first_missing_segment {directory} 00000001 0000000100000000000000FE', tmp_path)
    assert done.stdout.strip() == "000000010000000100000001", done.stderr
    done = wal_shell(f'first_missing_segment {directory} 00000001 0000000100000000000000FF', tmp_path)
    assert done.stdout.strip() == "000000010000000100000001"
    done = wal_shell(f'first_missing_segment {directory} 00000001 000000010000000100000002', tmp_path)
    assert done.stdout.strip() == "", "nothing missing from the start onwards"
    done = wal_shell(f'first_missing_segment {directory} 00000001 000000010000000100000005', tmp_path)
    assert done.stdout.strip() == "000000010000000100000005", "the start segment itself is missing"


@needs_tools
def test_a_recovery_starts_from_the_newest_base_backup_ending_before_the_time(tmp_path):
    directory = cluster(tmp_path, [], {
        "20260301T020000Z": {"end_time": "2026-03-01T02:00:31Z"},
        "20260302T020000Z": {"end_time": "2026-03-02T02:00:40Z"},
    })
    for when, expected in (("2026-03-01T02:00:30Z", ""), ("2026-03-01T02:00:31Z", "20260301T020000Z"),
                           ("2026-03-02T02:00:39Z", "20260301T020000Z"), ("2026-03-05T00:00:00Z", "20260302T020000Z")):
        done = wal_shell(f'base_for {directory} "$(epoch_of {when})"', tmp_path)
        assert done.stdout.strip() == expected, (when, done.stderr)
    done = wal_shell(f'if recover_to c i {directory} 2026-03-01T01:00:00Z; then echo 0; '
                     'else echo "1|$recover_error"; fi', tmp_path)
    assert done.stdout.strip() == ("1|2026-03-01T01:00:00Z is before the recoverable window of cluster 7441 "
                                   "(earliest: 2026-03-01T02:00:31Z)"), done.stderr


def test_wal_shipping_units(settings):
    units = render.wal_ship_units()
    timer, service = units[layout.WAL_SHIP_TIMER], units[layout.WAL_SHIP_SERVICE]
    assert f"OnUnitInactiveSec={layout.WAL_SHIP_INTERVAL}s" in timer and "WantedBy=timers.target" in timer
    assert f"ExecStart={layout.LIB_DIR}/srq-hpn-wal ship" in service and "Type=oneshot" in service
    env = render.deploy_env(replace(settings, backup_wal_timeout=45))
    assert "WAL_ARCHIVE=1\n" in env and "WAL_TIMEOUT=45\n" in env and f"WAL_MOUNT={layout.WAL_MOUNT}\n" in env
