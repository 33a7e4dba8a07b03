"""Scenario 20: the deploy schedules backups. The timer is enabled with its next run
due; a run started by hand (as the timer starts it) writes a verified backup of the
rows the api wrote, root-only; the operator's Backups fact lists it; a run waits for a
database that starts late (after a reboot), and systemd runs a failed run again; a run
against a database that stays stopped fails the unit once its retries are spent, and
every older backup is kept; retention with small
limits, set through the deploy, over backups dated in the past keeps exactly the
expected ones and nothing that is not the deploy's."""

import threading
from contextlib import contextmanager
from datetime import datetime, timezone

from tests.integration.helpers import (
    BACKUP_DIR,
    backup_dir_listing,
    backups,
    deploy,
    fact,
    manifest,
    psql,
    take_backup,
    wait_until,
)
from tests.testbed import harness

SERVICE, TIMER = "srq-hpn-backup.service", "srq-hpn-backup.timer"
DROP_IN = f"/run/systemd/system/{SERVICE}.d"
DB = "srq-hpn-db"


def test_the_timer_is_enabled_with_its_next_run_scheduled(deployed, server):
    assert server.exec(f"systemctl is-enabled {TIMER}")[1].strip() == "enabled"
    assert server.exec(f"systemctl is-active {TIMER}")[1].strip() == "active"
    assert "\nOnCalendar=daily\n" in server.exec(f"systemctl cat {TIMER}")[1]  # the default schedule
    _, calendar = server.exec(f"systemctl show {TIMER} -p TimersCalendar --value")
    assert "OnCalendar=*-*-* 00:00:00" in calendar, calendar
    _, next_run = server.exec(f"systemctl show {TIMER} -p NextElapseUSecRealtime --value")
    assert next_run.strip().endswith("00:00:00 UTC"), f"no next run scheduled: {next_run!r}"


def test_a_run_started_by_hand_writes_a_verified_backup(deployed, server, testbed, caddy_ca):
    for title in ("backed up 1", "backed up 2"):
        created = harness.https_get(server, "/api/events", caddy_ca, method="POST",
                                    headers={"Content-Type": "application/json"},
                                    body=f'{{"title": "{title}", "starts_at": "2026-05-01T10:00:00Z"}}'.encode())
        assert created.status == 201, created.text
    rows = int(psql(server, "SELECT count(*) FROM events"))

    name = take_backup(server)

    found = manifest(server, name)
    assert found["verified"] is True and found["database"] == "srq_hpn"
    assert found["alembic_revision"] == ["0002"]
    assert found["tables"]["public.events"] == rows >= 2
    assert found["tables"]["public.alembic_version"] == 1
    for file, info in found["files"].items():
        _, digest = server.exec(f"sha256sum {BACKUP_DIR}/{name}/{file}")
        assert digest.split()[0] == info["sha256"], file
    # Root only: the directories 0700, every file 0600.
    _, modes = server.exec(f"stat -c '%a %U %n' {BACKUP_DIR} {BACKUP_DIR}/{name} {BACKUP_DIR}/{name}/*")
    assert [line.split()[:2] for line in modes.splitlines()] == [["700", "root"]] * 2 + [["600", "root"]] * 3
    # The dump reads back in the database's own pg_restore.
    code, _ = server.exec(f"docker exec -i srq-hpn-db pg_restore --list < {BACKUP_DIR}/{name}/db.dump >/dev/null",
                          check=False)
    assert code == 0
    assert f"{name} written and verified" in server.exec(f"journalctl -u {SERVICE} -n 20 --no-pager")[1]

    answer = fact(server, testbed.settings(), "tasks.facts.Backups")
    assert answer["newest"] == name and answer["stale"] is False and answer["newest_age_hours"] < 1
    listed = {backup["name"]: backup for backup in answer["backups"]}
    assert listed[name]["verified"] is True and listed[name]["revision"] == ["0002"]
    assert listed[name]["time"] <= datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def unit_settings(server, **service):
    """The backup unit with [Service] settings of the test's (a runtime drop-in, as
    `systemctl edit --runtime` writes one): shorter waits than the deploy's."""
    lines = "\n".join(f"{key}={value}" for key, value in service.items())
    server.exec(f"mkdir -p {DROP_IN} && printf '[Service]\\n%s\\n' '{lines}' > {DROP_IN}/test.conf "
                "&& systemctl daemon-reload")
    try:
        yield
    finally:
        server.exec(f"rm -rf {DROP_IN} && systemctl daemon-reload && systemctl reset-failed {SERVICE}", check=False)


@contextmanager
def database_stopped(server):
    server.exec(f"docker stop {DB}")
    try:
        yield
    finally:
        server.exec(f"docker start {DB} && /usr/local/lib/srq-hpn/srq-hpn-wait 120 db", timeout=300)


def unit_state(server) -> dict[str, str]:
    _, out = server.exec(f"systemctl show {SERVICE} -p ActiveState -p SubState -p Result -p NRestarts")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_a_run_waits_for_a_database_that_starts_late(deployed, server, caddy_ca):
    """After a reboot the timer's missed run (Persistent=true) may start before Docker has
    started the database: the run waits for it to run and accept connections, then backs it up."""
    before = set(backups(server))
    with database_stopped(server):
        later = threading.Timer(8, lambda: server.exec(f"docker start {DB}", check=False, timeout=60))
        later.start()
        try:
            code, out = server.exec(f"systemctl start {SERVICE}", check=False, timeout=600)
        finally:
            later.join()
    _, journal = server.exec(f"journalctl -u {SERVICE} -n 30 --no-pager")
    assert code == 0, f"{out}\n{journal}"
    (name,) = set(backups(server)) - before
    assert "waiting for the database container" in journal and f"{name} written and verified" in journal
    assert SERVICE not in server.failed_units()
    assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200


def test_a_failed_run_is_tried_again_by_systemd(deployed, server):
    """A run that fails (the database still stopped after its wait) is run again by systemd
    (Restart=on-failure), which backs the database up once it is back. The waits are the
    test's: seconds, not the deploy's minutes."""
    before = set(backups(server))
    with unit_settings(server, Environment="SRQ_HPN_DB_WAIT=2", RestartSec="6s"):
        with database_stopped(server):
            code, _ = server.exec(f"systemctl start {SERVICE}", check=False, timeout=120)
            assert code != 0, "the backup unit succeeded against a stopped database"
            assert unit_state(server)["SubState"] == "auto-restart", unit_state(server)
        wait_until(lambda: unit_state(server)["ActiveState"] == "inactive", "the unit's next run succeeds",
                   timeout=120, poll=1)
        assert unit_state(server)["Result"] == "success", unit_state(server)
    assert len(set(backups(server)) - before) == 1
    _, journal = server.exec(f"journalctl -u {SERVICE} -n 40 --no-pager")
    assert "systemd runs it again" in journal


def test_a_run_against_a_stopped_database_fails_the_unit_and_keeps_the_backups(deployed, server, caddy_ca):
    """Against a database that stays stopped, every run fails (after its wait), systemd's
    retries too; then the unit stays failed, and every older backup is kept."""
    if not backups(server):
        take_backup(server)
    before = backup_dir_listing(server)
    with unit_settings(server, Environment="SRQ_HPN_DB_WAIT=2", RestartSec="1s"):
        with database_stopped(server):
            code, _ = server.exec(f"systemctl start {SERVICE}", check=False, timeout=120)
            assert code != 0, "the backup unit succeeded against a stopped database"
            wait_until(lambda: SERVICE in server.failed_units(), "the unit fails once its retries are spent",
                       timeout=120, poll=1)
            state = unit_state(server)
            assert (state["ActiveState"], state["Result"], state["NRestarts"]) == ("failed", "exit-code", "2"), state
            _, journal = server.exec(f"journalctl -u {SERVICE} -n 40 --no-pager")
            assert "the database container is not running (exited) after waiting 2s for it: nothing was backed up" \
                in journal
            assert "no more tries: the unit stays failed" in journal
            assert backup_dir_listing(server) == before
    # The shared server is as it was: the next run succeeds, and the app reaches its database.
    take_backup(server)
    assert SERVICE not in server.failed_units()
    assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200


def months_before(now: datetime, months: int) -> str:
    """A backup's name on the 15th of the month `months` before `now`'s, at 02:00 UTC."""
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    return f"srq-hpn-{year:04d}{month + 1:02d}15T020000Z"


def test_retention_with_small_limits_keeps_exactly_the_expected_backups(deployed, server, testbed):
    """The shared server's real backups wait aside while the directory holds backups
    dated in the past (copies of a real one) and a file of the operator's; a scheduled
    run with daily 2, weekly 1, monthly 3 then keeps: its own backup (the newest: day 1,
    week 1, month 1), the 15th of two months ago (day 2, month 2) and of four months
    ago (month 3); it removes the 14th of two months ago (its month already counted)
    and the 15th of five months ago (past the monthly limit)."""
    settings = testbed.settings()
    source = backups(server)[-1] if backups(server) else take_backup(server)
    now = datetime.now(timezone.utc)
    kept_month_2, kept_month_4, removed_month_5 = (months_before(now, n) for n in (2, 4, 5))
    removed_same_month = kept_month_2.replace("15T", "14T")
    aside = "/var/backups/srq-hpn-aside-for-a-test"
    server.exec(f"mkdir -p {aside} && cp -a {BACKUP_DIR}/{source} {aside}/template && "
                f"mv {BACKUP_DIR}/srq-hpn-* {aside}/ && echo mine > {BACKUP_DIR}/notes.txt")
    try:
        for name in (kept_month_2, removed_same_month, kept_month_4, removed_month_5):
            server.exec(f"cp -a {aside}/template {BACKUP_DIR}/{name}")
        deploy(server, {**settings, "backup_keep_daily": 2, "backup_keep_weekly": 1, "backup_keep_monthly": 3})

        new = take_backup(server)

        _, journal = server.exec(f"journalctl -u {SERVICE} -n 30 --no-pager")
        assert sorted(backups(server)) == sorted([kept_month_2, kept_month_4, new]), journal
        assert f"removed {removed_month_5} (retention: 2 daily, 1 weekly, 3 monthly)" in journal
        assert f"removed {removed_same_month} (retention: 2 daily, 1 weekly, 3 monthly)" in journal
        assert server.exec(f"cat {BACKUP_DIR}/notes.txt")[1].strip() == "mine"
    finally:
        made = " ".join(f"{BACKUP_DIR}/{name}" for name in (kept_month_2, removed_same_month, kept_month_4,
                                                              removed_month_5, "notes.txt"))
        server.exec(f"rm -rf {made} {aside}/template && mv {aside}/srq-hpn-* {BACKUP_DIR}/ 2>/dev/null; "
                    f"rmdir {aside}", check=False)
        deploy(server, settings)  # the default limits again
