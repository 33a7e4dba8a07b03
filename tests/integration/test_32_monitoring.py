"""Scenario 32: monitoring that alerts. A webhook receiver runs on the test network;
the deploy, given its URL (which holds a token), installs the monitor. Stopping the
api brings one alert within 2 minutes, starting it again one recovery message, and
nothing more while the state does not change; stopping Caddy alerts it and HTTPS. The URL is never printed. With
monitor_enabled = False the monitor is removed again.

The monitor runs every 20 s here (monitor_interval), not every minute, so that the
runs that must stay silent take less of CI's time."""

import secrets

import pytest

from tasks import layout
from tasks.settings import WEBHOOK_ENV_VAR
from tests.integration.helpers import STATE_DIR, checklist, deploy, psql, wait_until
from tests.testbed import harness
from tests.testbed.receiver import start_webhook_receiver

API_CONTAINER, CADDY_CONTAINER = layout.CONTAINERS[layout.API], layout.CONTAINERS[layout.CADDY]
LAST_RUN = f"{STATE_DIR}/monitor/last-run"
ALERT_WITHIN = 120  # seconds: the acceptance's "within 2 minutes"
INTERVAL = 20


def settings(testbed, **overrides):
    return testbed.settings(monitor_interval=INTERVAL, **overrides)


@pytest.fixture(scope="module")
def receiver(testbed):
    receiver = start_webhook_receiver(testbed)
    yield receiver
    receiver.remove()


@pytest.fixture(scope="module")
def monitored(deployed, server, testbed, receiver):
    """The shared server with the monitor installed (its URL holds a token); removed after."""
    token = secrets.token_urlsafe(24)
    url = receiver.url(f"/alerts/{token}")
    run = deploy(server, settings(testbed), "-vvv", env={WEBHOOK_ENV_VAR: url})
    yield {"url": url, "token": token, "install": run}
    if server.exec(f"systemctl cat {layout.MONITOR_TIMER}", check=False)[0] == 0:  # not removed by the last test
        deploy(server, testbed.settings(monitor_enabled=False))


def last_run(server) -> int:
    """When the monitor last ran (epoch seconds), 0 before its first run."""
    code, text = server.exec(f"cat {LAST_RUN}", check=False)
    return int(text.split()[0]) if code == 0 and text.strip() else 0


def wait_for_runs(server, count: int) -> None:
    """Bounded wait for `count` more runs of the monitor."""
    for _ in range(count):
        seen = last_run(server)
        wait_until(lambda: last_run(server) > seen, "the monitor runs again", timeout=3 * INTERVAL + 30, poll=1)


def test_one_alert_when_the_api_stops_and_one_when_it_is_back(monitored, server, testbed, receiver):
    wait_until(lambda: last_run(server) > 0, "the monitor's first run", timeout=60, poll=1)
    assert receiver.requests() == [], "a healthy fresh stack alerts nothing"

    server.exec(f"docker stop {API_CONTAINER}")
    try:
        wait_until(lambda: len(receiver.requests()) >= 1, "an alert after the api stopped", timeout=ALERT_WITHIN,
                   poll=1)
        wait_for_runs(server, 2)
        alerts = receiver.requests()
        stopped = checklist(server, settings(testbed))
    finally:
        server.exec(f"docker start {API_CONTAINER}")

    assert len(alerts) == 1, f"one alert, nothing more while the api stays down: {alerts}"
    (alert,) = alerts
    assert alert["path"] == f"/alerts/{monitored['token']}"
    assert alert["content_type"] == "application/json"
    body = alert["json"]
    assert (body["event"], body["item"], body["status"]) == ("problem", "containers", "fail")
    assert f"api ({API_CONTAINER}) exited" in body["evidence"]
    assert body["text"].startswith("srq-hpn.test: containers FAIL: ") and body["domain"] == "srq-hpn.test"
    # Meanwhile the checklist shows the failing containers and a working monitor.
    assert stopped.statuses["containers"] == "fail" and stopped.run.returncode != 0
    assert stopped.statuses["monitoring"] == "pass", stopped.items["monitoring"]
    assert "1 problem(s): containers" in stopped.evidence("monitoring")

    wait_until(lambda: len(receiver.requests()) >= 2, "a recovery message after the api started",
               timeout=ALERT_WITHIN, poll=1)
    wait_for_runs(server, 2)
    messages = receiver.requests()
    assert len(messages) == 2, f"one recovery message, nothing more once the api is back: {messages}"
    recovered = messages[1]["json"]
    assert (recovered["event"], recovered["item"]) == ("recovered", "containers")
    assert recovered["text"].startswith("srq-hpn.test: containers recovered: ")


def test_https_is_a_problem_while_caddy_is_stopped_and_recovers_with_it(monitored, server, receiver):
    """Nothing serves HTTPS while Caddy is stopped: the https item is alerted (a fail, not a
    cannot-check that would read as healthy), and recovers once Caddy is back, with Caddy's."""
    seen = len(receiver.requests())
    server.exec(f"docker stop {CADDY_CONTAINER}")
    try:
        wait_until(lambda: len(receiver.requests()) >= seen + 2, "the alerts after Caddy stopped",
                   timeout=ALERT_WITHIN, poll=1)
        wait_for_runs(server, 1)
        alerts = receiver.requests()[seen:]
    finally:
        server.exec(f"docker start {CADDY_CONTAINER}")
    assert sorted((a["json"]["event"], a["json"]["item"], a["json"]["status"]) for a in alerts) == [
        ("problem", "caddy", "fail"), ("problem", "https", "fail")], alerts
    assert "Caddy is not running" in next(a["json"]["evidence"] for a in alerts if a["json"]["item"] == "https")

    wait_until(lambda: len(receiver.requests()) >= seen + 4, "the recovery messages after Caddy started",
               timeout=ALERT_WITHIN, poll=1)
    wait_for_runs(server, 1)
    recovered = receiver.requests()[seen + 2:]
    assert sorted((m["json"]["event"], m["json"]["item"]) for m in recovered) == [
        ("recovered", "caddy"), ("recovered", "https")], recovered


def test_the_webhook_url_is_a_secret(monitored, server, testbed):
    url, token = monitored["url"], monitored["token"]
    _, mode = server.exec(f"stat -c '%a %U' {layout.MONITOR_WEBHOOK_FILE}")
    assert mode.strip() == "600 root"
    inventory = server.inventory(**settings(testbed))
    runs = {
        "deploy -vvv (installing)": monitored["install"],
        "deploy --dry --diff -vvv (URL given again)": harness.run_pyinfra(
            inventory, "deploy.py", "--dry", "--diff", "-vvv", env={WEBHOOK_ENV_VAR: url}),
        "checklist -vvv": harness.run_pyinfra(inventory, "checklist.py", "-y", "-vvv"),
        "fact --json": harness.run_pyinfra(inventory, "fact", "tasks.facts.Checklist", "--json"),
    }
    for label, run in runs.items():
        assert run.returncode == 0, f"{label} failed:\n{run.describe()}"
        assert token not in run.output, f"{label} printed the webhook's token"
    # The URL stays on the server: a deploy without it changes nothing.
    again = deploy(server, settings(testbed))
    assert again.changed_operations() == []
    assert server.exec(f"systemctl is-enabled {layout.MONITOR_TIMER}")[1].strip() == "enabled"


def test_broken_wal_archiving_is_alerted_once_and_its_recovery_too(monitored, server, testbed, receiver):
    """The WAL archive made read-only (as a full or failing disk would): the database cannot
    archive, so the checklist fails the wal_archive item and the monitor alerts it once, and
    once more when it works again."""
    wal = f"{layout.BACKUP_DIR}/{layout.WAL_SUBDIR}/{psql(server, 'SELECT system_identifier FROM pg_control_system()')}/wal"
    seen = len(receiver.requests())
    server.exec(f"chmod 0500 {wal}")
    try:
        psql(server, "SELECT txid_current()")  # something to archive
        psql(server, "SELECT pg_switch_wal()")
        try:
            wait_until(lambda: len(receiver.requests()) > seen, "an alert after the archive became read-only",
                       timeout=ALERT_WITHIN, poll=1)
        except AssertionError as error:
            _, monitor = server.exec(f"cat {LAST_RUN}; journalctl -u {layout.MONITOR_SERVICE} -n 15 --no-pager; "
                                     f"{layout.LIB_DIR}/srq-hpn-check", check=False)
            raise AssertionError(f"{error}\nthe monitor and the checks said:\n{monitor}") from None
        wait_for_runs(server, 2)
        alerts = receiver.requests()[seen:]
        broken = checklist(server, settings(testbed))
    finally:
        server.exec(f"chmod 0700 {wal}")
    assert [(a["json"]["event"], a["json"]["item"], a["json"]["status"]) for a in alerts] == [
        ("problem", "wal_archive", "fail")], alerts
    assert broken.statuses["wal_archive"] == "fail" and broken.run.returncode != 0
    assert "cannot write into its archive" in broken.evidence("wal_archive"), broken.evidence("wal_archive")

    wait_until(lambda: len(receiver.requests()) > seen + 1, "a recovery message once the archive is writable",
               timeout=ALERT_WITHIN, poll=1)
    wait_for_runs(server, 1)
    recovered = receiver.requests()[seen + 1:]
    assert [(m["json"]["event"], m["json"]["item"]) for m in recovered] == [("recovered", "wal_archive")], recovered


def test_monitor_removed_when_disabled(monitored, server, testbed):
    deploy(server, testbed.settings(monitor_enabled=False))
    assert server.exec(f"systemctl cat {layout.MONITOR_TIMER}", check=False)[0] != 0
    assert server.exec(f"test -e {layout.MONITOR_WEBHOOK_FILE}", check=False)[0] != 0
    result = checklist(server, testbed.settings())
    assert result.statuses["monitoring"] == "warn" and "no alerts" in result.evidence("monitoring")
