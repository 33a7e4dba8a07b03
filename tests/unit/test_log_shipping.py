"""Log shipping's pure parts: the setting's rules, the compose layer's logging, the plan's
words for a changed log driver, systemd-journal-upload's drop-in, and the checklist's
verdicts (check_logs run in bash as the server runs it, with stand-ins for systemctl,
journalctl and docker)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace

import pytest
import yaml

from tasks import deploy_layer, layout, render
from tasks.plan import log_driver_changes
from tasks.validation import check_settings

URL = "http://logs.internal:19532"


def problems(defaults, url):
    return check_settings({"srq_hpn_domain": "example.com", "log_shipping_url": url}, defaults, {})


@pytest.mark.parametrize("url", ["", URL, "http://10.0.0.5", "http://collector", "http://logs.example.com:8080"])
def test_a_collectors_url_passes(defaults, url):
    assert problems(defaults, url) == []


@pytest.mark.parametrize("url, words", [
    ("logs.internal:19532", "must be http://host[:port]"),
    ("http://logs.internal:19532/upload", "no path"),
    ("http://logs.internal:19532\n[Upload]", "must be http://host[:port]"),
    ("http://-logs.internal", "must be http://host[:port]"),
    ("ftp://logs.internal", "must be http://host[:port]"),
    ("https://logs.internal:19532", "https is not offered"),
])
def test_anything_else_is_refused_before_any_change(defaults, url, words):
    found = problems(defaults, url)
    assert len(found) == 1 and found[0].startswith("log_shipping_url") and words in found[0], found


def test_a_password_in_the_url_is_refused_and_never_echoed(defaults):
    for url in ("http://ops:s3cret-token@logs.internal:19532", "https://ops:s3cret-token@logs.internal"):
        (problem,) = problems(defaults, url)
        assert "s3cret-token" not in problem and problem.startswith("log_shipping_url")


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("!override", lambda loader, node: ("override", loader.construct_mapping(node, deep=True)
                                                          if isinstance(node, yaml.MappingNode)
                                                          else loader.construct_sequence(node, deep=True)))


def layered(journald: bool, services: dict | None = None):
    config = {"name": "srq-hpn", "services": {name: {"image": "x"} for name in layout.SERVICES}}
    config["services"].update(services or {})
    return deploy_layer.build_layer(config, app_dir="/opt/srq-hpn", caddy_dir="/var/lib/srq-hpn/caddy",
                                    caddyfile_template=True, db_on_localhost=True, release="abc123def456",
                                    tags={}, journald=journald)


def test_with_log_shipping_every_service_logs_to_the_journal_whatever_the_app_says():
    worker = {"worker": {"image": "x", "logging": {"driver": "json-file", "options": {"max-size": "1m"}}}}
    text = deploy_layer.dump_override(layered(True, worker).document, "header")
    services = yaml.load(text, Loader=Loader)["services"]
    assert sorted(services) == sorted([*layout.SERVICES, "worker"])
    for service in services.values():
        assert service["logging"] == ("override", {"driver": "journald", "options": {"tag": "{{.Name}}"}})
    assert "logging: !override\n" in text


def test_without_it_the_layer_leaves_logging_alone():
    assert "logging" not in deploy_layer.dump_override(layered(False).document, "header")


def test_the_plan_says_a_container_is_recreated_for_its_log_driver():
    stale = {"api": "its configuration changed", "caddy": "its configuration changed", "web": "not created yet",
             "db": "POSTGRES_PASSWORD changed"}
    containers = {"api": {"log_driver": "json-file"}, "caddy": {"log_driver": "journald"},
                  "db": {"log_driver": "json-file"}}
    merged = {"services": {"api": {"logging": {"driver": "journald"}}, "caddy": {}, "web": {},
                           "db": {"logging": {"driver": "journald"}}}}
    assert log_driver_changes(stale, containers, merged) == {
        "api": "its log driver changes, json-file to journald",
        "caddy": "its log driver changes, journald to json-file",  # turned off: back to daemon.json's
        "web": "not created yet",
        "db": "POSTGRES_PASSWORD changed",  # the other reason stands
    }
    assert log_driver_changes({}, containers, merged) == {}


def test_journal_uploads_drop_in_names_the_collector(settings):
    text = render.journal_upload_conf(replace(settings, log_shipping_url=URL))
    assert text.splitlines()[0] == f"# {render.MANAGED_NOTICE}"
    assert "[Upload]\nURL=http://logs.internal:19532\n" in text


# --- check_logs, as the server runs it ---------------------------------------------------

STAND_INS = {
    "systemctl": """#!/bin/sh
case "$1" in
  is-active) echo "$UPLOAD_STATE"; [ "$UPLOAD_STATE" = active ] ;;
  show) echo "$UPLOAD_SINCE" ;;
esac
""",
    "journalctl": """#!/bin/sh
case "$*" in
  *--after-cursor=*) [ -z "$WAITING" ] || printf '%s.123456 server srq-hpn-api[1]: GET /\\n' "$WAITING" ;;
  *" -u "*) echo "Upload to http://logs.internal:19532/upload failed: Couldn't connect to server" ;;
esac
""",
    "docker": """#!/bin/sh
case "$1" in
  ps) echo c1 ;;
  inspect) echo "/srq-hpn-api $DRIVER" ;;
esac
""",
}


def check_logs(tmp_path, url=URL, state="active", since=30, cursor=True, waiting=None, driver="journald"):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in STAND_INS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    state_file = tmp_path / "state"
    if cursor:
        state_file.write_text("LAST_CURSOR=s=abc;i=42;b=def\n")
    config = tmp_path / "deploy.env"
    config.write_text(f"APP_DIR={tmp_path}\nSTATE_DIR={tmp_path}\nENV_FILE=.env.production\nDOMAIN=example.com\n"
                      f"LOG_SHIPPING_URL={url}\nLOG_SHIPPING_SERVICE={layout.JOURNAL_UPLOAD_SERVICE}\n"
                      f"LOG_SHIPPING_STATE={state_file}\nLOG_SHIPPING_MAX_LAG=300\nLOG_DRIVER=journald\n")
    now = int(time.time())
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SRQ_HPN_CONFIG": str(config), "UPLOAD_STATE": state,
           "UPLOAD_SINCE": time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(now - since)), "DRIVER": driver,
           "WAITING": str(now - waiting) if waiting is not None else "", "TZ": "UTC"}
    done = subprocess.run(["bash", "-c", f'. "{render.SERVER_PROGRAMS}/lib.sh"; . "{render.SERVER_PROGRAMS}/checks.sh"; '
                                         "run_check logs"], capture_output=True, text=True, timeout=30, env=env)
    item, status, evidence = done.stdout.rstrip("\n").split("\t")
    assert item == "logs", done.stdout + done.stderr
    return status, evidence


def test_without_a_collector_the_item_is_not_set_up(tmp_path):
    status, evidence = check_logs(tmp_path, url="")
    assert status == "not-set-up" and "set log_shipping_url" in evidence


def test_shipping_passes(tmp_path):
    assert check_logs(tmp_path) == ("pass", "the containers log to the journal, which systemd-journal-upload.service "
                                            "sends to http://logs.internal:19532: all of it taken")
    status, evidence = check_logs(tmp_path, waiting=20)
    assert status == "pass" and "the oldest line not taken yet is 20 s old" in evidence


@pytest.mark.parametrize("state", ["inactive", "failed", "activating"])
def test_an_uploader_that_does_not_run_fails_saying_its_last_words(tmp_path, state):
    status, evidence = check_logs(tmp_path, state=state)
    assert status == "fail"
    assert evidence.startswith(f"systemd-journal-upload.service is {state}: the logs are not shipped")
    assert "its last line: Upload to http://logs.internal:19532/upload failed" in evidence


def test_a_collector_that_takes_nothing_fails(tmp_path):
    status, evidence = check_logs(tmp_path, waiting=900)
    assert status == "fail" and "has not taken the journal's lines of the last 15 min" in evidence


def test_a_container_that_does_not_log_to_the_journal_fails(tmp_path):
    status, evidence = check_logs(tmp_path, driver="json-file")
    assert (status, evidence) == ("fail", "not logging to the journal, so not shipped: srq-hpn-api (json-file) "
                                          "(deploy to recreate them)")


def test_an_uploader_that_has_sent_nothing_warns_then_fails(tmp_path):
    status, evidence = check_logs(tmp_path, cursor=False, since=30)
    assert status == "warn" and "has sent nothing to http://logs.internal:19532 yet" in evidence
    status, evidence = check_logs(tmp_path, cursor=False, since=900)
    assert status == "fail" and "has sent nothing to http://logs.internal:19532 in the 15 min since it started" \
        in evidence
