"""Scenario 33, on a server of its own and a log collector (systemd-journal-remote) on
the test network: log shipping. An https:// collector is refused before any change.
Turned on over a deployed stack, the plan says that every container is recreated once for
its new log driver, and the run does exactly that; the containers then log to the journal
(`docker logs` still reads them), and a line the api logs (a request with a token of its
own, through Caddy) reaches the collector. The checklist's `logs` line passes; a second
deploy changes nothing; with systemd-journal-upload stopped the line fails and the monitor
alerts it (a webhook receiver on the test network), and the next deploy starts the uploader
again (the monitor then says it recovered). Turned off, the containers are recreated back
onto json-file, the uploader is stopped, and the line warns: not set up."""

import secrets
import time

import pytest

from tasks import layout
from tests.integration.helpers import (
    checklist,
    containers,
    deploy,
    failed_deploy,
    plan_then_run,
    start_times,
    wait_until,
)
from tasks.settings import WEBHOOK_ENV_VAR
from tests.testbed import harness
from tests.testbed.collector import start_journal_collector
from tests.testbed.receiver import start_webhook_receiver

API_CONTAINER = layout.CONTAINERS[layout.API]
UPLOADER = layout.JOURNAL_UPLOAD_SERVICE
SHIP = "Ship the logs off the server"  # the step's name, before each of its operations


@pytest.fixture
def collector(testbed):
    collector = start_journal_collector(testbed)
    yield collector
    collector.remove()


@pytest.fixture
def receiver(testbed):
    receiver = start_webhook_receiver(testbed, "log-alerts")
    yield receiver
    receiver.remove()


def alerts_of(receiver, item: str) -> list[tuple[str, str]]:
    """(event, status) of each alert the monitor sent about one item."""
    return [(r["json"]["event"], r["json"]["status"]) for r in receiver.requests() if r["json"]["item"] == item]


def log_drivers(server) -> dict[str, str]:
    """container name -> its log driver, for the stack's containers."""
    names = sorted(containers(server))
    _, out = server.exec(["docker", "inspect", "--format", "{{.Name}} {{.HostConfig.LogConfig.Type}}", *names])
    return {name.lstrip("/"): driver for name, driver in (line.split() for line in out.splitlines())}


def test_the_containers_logs_reach_the_collector(fresh_server, testbed, collector, receiver, tmp_path):
    server = fresh_server("logs")
    off = testbed.settings(monitor_interval=10)
    on = testbed.settings(monitor_interval=10, log_shipping_url=collector.url)
    monitored = {WEBHOOK_ENV_VAR: receiver.url("/alerts")}

    # A collector over https needs a client certificate the deploy does not install: refused first.
    refused = failed_deploy(server, {**off, "log_shipping_url": f"https://{collector.alias}:19532"})
    assert "log_shipping_url: https is not offered" in refused.output
    assert server.exec("command -v docker", check=False)[0] != 0, "the refused deploy changed the server"

    deploy(server, off, env=monitored)
    assert set(log_drivers(server).values()) == {"json-file"}
    before = start_times(server)

    # Turned on: every container is recreated once for its log driver, and the plan said so.
    lines, run = plan_then_run(server, on)
    said = "\n".join(lines)
    assert "its log driver changes, json-file to journald" in said, said
    assert "start db (its log driver changes, json-file to journald)" in lines, lines
    changed = run.changed_operations()
    print("\n".join(["the plan:", *lines, "changed:", *changed]))
    assert f"{SHIP} | Ensure {layout.JOURNAL_UPLOAD_DROP_IN} sends the journal to {collector.url}" in changed
    assert f"{SHIP} | Ensure {UPLOADER} ships the journal and is enabled at boot" in changed
    assert set(log_drivers(server).values()) == {"journald"}, log_drivers(server)
    after = start_times(server)
    assert all(after[name] != started for name, started in before.items()), (before, after)
    assert server.exec(f"systemctl is-enabled {UPLOADER} && systemctl is-active {UPLOADER}")[0] == 0
    # `docker logs` reads the journal: the guide's command still works.
    _, logs = server.exec(f"docker logs --tail 20 {API_CONTAINER} 2>&1")
    assert "Uvicorn running on" in logs or "GET /api/health" in logs, logs

    # A line the api logs reaches the collector.
    ca = harness.caddy_root_ca(server, tmp_path / "caddy-root.crt")
    token = secrets.token_hex(8)
    sent = time.monotonic()
    assert harness.https_get(server, f"/api/health?shipped={token}", ca).status == 200
    wait_until(lambda: any(token in line for line in collector.lines(f"SYSLOG_IDENTIFIER={API_CONTAINER}")),
               f"the api's line with {token} reaches the collector", timeout=60)
    took = time.monotonic() - sent
    print(f"the api's line reached the collector {took:.1f}s after the request")
    (line,) = [line for line in collector.lines(f"CONTAINER_NAME={API_CONTAINER}") if token in line]
    assert f"GET /api/health?shipped={token}" in line

    result = checklist(server, on)
    assert result.statuses["logs"] == "pass", result.items["logs"]
    assert f"sends to {collector.url}" in result.evidence("logs")

    # A second deploy changes nothing, and restarts nothing.
    started = start_times(server)
    assert deploy(server, on).changed_operations() == []
    assert start_times(server) == started

    # The uploader stopped: the item fails (and the checklist with it), the monitor alerts it;
    # a deploy starts it again, and the monitor says it recovered.
    assert alerts_of(receiver, "logs") == []
    server.exec(f"systemctl stop {UPLOADER}")
    stopped = checklist(server, on)
    assert stopped.statuses["logs"] == "fail", stopped.items["logs"]
    assert stopped.evidence("logs").startswith(f"{UPLOADER} is inactive: the logs are not shipped to {collector.url}")
    assert stopped.run.returncode != 0
    wait_until(lambda: alerts_of(receiver, "logs"), "the monitor's alert of the logs item", timeout=90, poll=1)
    assert alerts_of(receiver, "logs") == [("problem", "fail")]
    assert deploy(server, on).changed_operations() == [f"{SHIP} | Ensure {UPLOADER} ships the journal and is enabled at boot"]
    assert checklist(server, on).statuses["logs"] == "pass"
    wait_until(lambda: len(alerts_of(receiver, "logs")) == 2, "the monitor's recovery message", timeout=90, poll=1)
    assert alerts_of(receiver, "logs") == [("problem", "fail"), ("recovered", "pass")]

    # Turned off: back to json-file, the uploader stopped, the drop-in gone; the item is not set up.
    lines, run = plan_then_run(server, off)
    assert "its log driver changes, journald to json-file" in "\n".join(lines), lines
    assert set(log_drivers(server).values()) == {"json-file"}
    assert server.exec(f"test -e {layout.JOURNAL_UPLOAD_DROP_IN}", check=False)[0] != 0
    assert server.exec(f"systemctl is-active {UPLOADER}", check=False)[0] != 0
    result = checklist(server, off)
    assert result.statuses["logs"] == "warn", result.items["logs"]
    assert result.evidence("logs").startswith("no log shipping: the logs stay on the server")
    assert deploy(server, off).changed_operations() == []
