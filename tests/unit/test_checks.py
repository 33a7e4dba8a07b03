"""The checklist's pure parts: its items, the verdicts of the server's checks (run in
bash as the server runs them), the fact's reading, the monitor's units and records."""

import json
import re
import subprocess
from dataclasses import replace
from urllib.parse import quote

import pytest

from tasks import checks, layout, render
from tasks.facts import Checklist
from tasks.facts.checklist import PROGRAMS_MARK
from tasks.digest import sha256
from tasks.secrets import EnvSources, Passwords
from tasks.settings import WEBHOOK_ENV_VAR
from tasks.validation import KNOWN_DEFAULT_PASSWORDS, check_monitor, check_webhook

JUDGE = render.SERVER_PROGRAMS / "checks-judge.sh"
DAY = 86400


def judged(function: str, *args: str, env: dict | None = None) -> str:
    """Call one of the checks' pure bash functions, as the server does."""
    done = subprocess.run(["bash", "-c", f'. "$0"; {function} "$@"', str(JUDGE), *args],
                          capture_output=True, text=True, env=env, check=True)
    return done.stdout


def test_every_item_has_a_check_on_the_server():
    text = "".join(render.server_programs().values())
    defined = set(re.findall(r"^check_(\w+)\(\)", text, flags=re.M))
    assert {item.key for item in checks.ITEMS} == defined
    assert set(checks.MONITORED) <= defined
    assert len({item.key for item in checks.ITEMS}) == len(checks.ITEMS)


@pytest.mark.parametrize("remaining, lifetime, verdict", [
    (60 * DAY, 90 * DAY, "pass"),   # Let's Encrypt, fresh
    (13 * DAY, 90 * DAY, "warn"),   # under 14 days
    (2 * DAY, 90 * DAY, "fail"),    # under 3 days
    (8 * 3600, 12 * 3600, "pass"),  # Caddy's internal CA: 12 h, renewed with 4 h left
    (3600, 12 * 3600, "warn"),      # under 14/90 of its lifetime
    (600, 12 * 3600, "fail"),       # under 3/90 of its lifetime
])
def test_certificate_verdicts(remaining, lifetime, verdict):
    assert judged("judge_certificate", str(remaining), str(lifetime), "14", "3").strip() == verdict


@pytest.mark.parametrize("free, verdict", [(50, "pass"), (20, "pass"), (19, "warn"), (10, "warn"), (9, "fail")])
def test_disk_verdicts(free, verdict):
    assert judged("judge_free_percent", str(free), "20", "10").strip() == verdict


@pytest.mark.parametrize("value, problem", [
    ("Postgres", "P is a known default or placeholder"),
    ("<generated-app-password>", "P is a known default or placeholder"),
    ("", "P is empty"),
    ("q7Zx9", "P is too short (5 characters, at least 32)"),
    ("ab" * 20, "P does not look random (only 2 distinct characters)"),
    ("S/per+Secret=Admin0123456789abcdefghijKLMN", ""),
])
def test_password_verdicts_say_why_without_the_value(value, problem):
    env = {"KNOWN_DEFAULT_PASSWORDS": checks.known_defaults(), "MIN_PASSWORD_LENGTH": "32",
           "MIN_DISTINCT_PASSWORD_CHARS": "12", "PATH": "/usr/bin:/bin"}
    said = judged("password_problem", "P", value, env=env).strip()
    assert said == problem
    if value:
        assert value not in said


def test_percent_encoding_matches_the_deploys_urls():
    password = "S/per+Secret=Ad min~é"
    assert judged("percent_encode", password) == quote(password, safe="")


def test_records_are_json_whatever_the_evidence():
    evidence = 'a "quoted" \\ back\tslash\nnew line'
    record = json.loads(judged("json_record", "db_port", "fail", evidence))
    assert record == {"item": "db_port", "status": "fail", "not_set_up": False,
                      "evidence": 'a "quoted" \\ back slash new line'}
    assert json.loads(judged("json_record", "backups", "not-set-up", "none"))["not_set_up"] is True
    assert json.loads(judged("json_record", "backups", "not-set-up", "none"))["status"] == "warn"


@pytest.mark.parametrize("previous, status, event", [
    ("ok", "pass", ""), ("ok", "cannot-check", ""), ("ok", "not-set-up", ""),
    ("ok", "fail", "problem"), ("ok", "warn", "problem"), ("warn", "fail", "problem"),
    ("fail", "fail", ""), ("fail", "pass", "recovered"), ("warn", "not-set-up", "recovered"),
    # What cannot be checked has not recovered: the alert's state is held.
    ("warn", "cannot-check", ""), ("fail", "cannot-check", ""),
])
def test_the_monitor_alerts_on_changes_only(previous, status, event):
    level = judged("alert_level", status, previous).strip()
    assert judged("alert_event", previous, level).strip() == event


def test_a_problem_is_not_recovered_while_it_cannot_be_checked():
    """The monitor's runs over time: what it keeps between runs is the level of the last
    alert it sent (as srq-hpn-monitor does); a cannot-check run changes nothing."""
    kept, events = "ok", []
    for status in ("pass", "fail", "cannot-check", "cannot-check", "fail", "cannot-check", "pass", "cannot-check"):
        level = judged("alert_level", status, kept).strip()
        event = judged("alert_event", kept, level).strip()
        if event:
            events.append((status, event))
            kept = level
    assert events == [("fail", "problem"), ("pass", "recovered")]


def records(*pairs):
    return [json.dumps({"item": key, "status": status, "not_set_up": False, "evidence": f"{key} evidence"})
            for key, status in pairs]


def current_programs():
    return [f"{PROGRAMS_MARK} {name} {sha256(text)}" for name, text in render.server_programs().items()]


def test_fact_reads_the_servers_lines_in_the_checklists_order():
    output = current_programs() + records(("disk", "warn"), ("passwords", "pass"), ("extra", "pass")) + ["noise"]
    result = Checklist().process(output)
    assert [r["item"] for r in result] == ["programs"] + [i.key for i in checks.ITEMS] + ["extra"]
    by_key = {r["item"]: r for r in result}
    assert by_key["programs"]["status"] == "pass"
    assert by_key["passwords"] == {"item": "passwords", "section": "Security", "title": "Strong, unique passwords",
                                   "status": "pass", "not_set_up": False, "evidence": "passwords evidence"}
    assert by_key["disk"]["status"] == "warn"
    assert by_key["db_port"]["status"] == "cannot-check"  # the server said nothing of it
    assert "no such check" in by_key["db_port"]["evidence"]


def test_fact_says_when_the_servers_programs_are_another_version_or_missing():
    stale = [line if "srq-hpn-check " not in line else f"{PROGRAMS_MARK} srq-hpn-check 0000" for line in
             current_programs()]
    result = Checklist().process(stale + records(("passwords", "pass")))
    assert result[0]["status"] == "warn" and "srq-hpn-check in /usr/local/lib/srq-hpn differ" in result[0]["evidence"]
    missing = Checklist().process([PROGRAMS_MARK])
    assert [(r["item"], r["status"]) for r in missing] == [("programs", "fail")]
    assert "deploy first" in missing[0]["evidence"]


def test_fact_command_checks_the_settings_domain_and_every_item():
    command = Checklist().command(domain="example.com")
    assert "srq-hpn-check --domain example.com passwords secrets_in_git" in command
    assert command.endswith("fi")


def test_printed_line_and_summary():
    result = checks.entry(checks.BY_KEY["db_port"], {"status": "fail", "evidence": "0.0.0.0:5432"})
    assert checks.line(result) == "fail          Database port (5432) not exposed [db_port]: 0.0.0.0:5432"
    assert checks.summary([result]) == "0 pass, 0 warn, 1 fail, 0 cannot-check"
    assert checks.entry(checks.BY_KEY["db_port"], {"status": "bogus"})["status"] == "cannot-check"


def test_deploy_env_tells_the_checks_their_limits(settings, tmp_path):
    path = tmp_path / "deploy.env"
    path.write_text(render.deploy_env(replace(settings, monitor_interval=30, checklist_image_max_age_days=7,
                                              log_shipping_url="http://logs.internal:19532")))
    names = ["MONITOR_CHECKS", "MONITOR_INTERVAL", "IMAGE_MAX_AGE_DAYS", "CERT_WARN_DAYS", "KNOWN_DEFAULT_PASSWORDS",
             "BACKUP_TIMER", "CADDY_TLS", "LOG_SHIPPING_URL", "LOG_SHIPPING_MAX_LAG"]
    done = subprocess.run(["bash", "-c", f". {path}; " + "; ".join(f'echo "${n}"' for n in names)],
                          capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "containers caddy https disk backups wal_archive logs", "30", "7", "14", checks.known_defaults(),
        layout.BACKUP_TIMER, "letsencrypt", "http://logs.internal:19532", "300"]


def test_monitor_units(settings):
    units = render.monitor_units(replace(settings, monitor_interval=45))
    assert sorted(units) == [layout.MONITOR_SERVICE, layout.MONITOR_TIMER]
    timer, service = units[layout.MONITOR_TIMER], units[layout.MONITOR_SERVICE]
    assert "OnUnitActiveSec=45s" in timer and "AccuracySec=1s" in timer and "WantedBy=timers.target" in timer
    assert f"ExecStart={layout.LIB_DIR}/srq-hpn-monitor" in service and "Type=oneshot" in service


def test_secrets_record_keeps_names_and_times_only():
    text = render.secrets_record({"POSTGRES_PASSWORD": "2026-01-01T00:00:00Z"}, ["POSTGRES_APP_PASSWORD"],
                                 "2026-11-28T10:00:00Z")
    assert json.loads(text) == {"POSTGRES_PASSWORD": "2026-01-01T00:00:00Z",
                                "POSTGRES_APP_PASSWORD": "2026-11-28T10:00:00Z"}


def test_changed_passwords_are_those_that_differ_from_the_server(settings):
    passwords = Passwords(postgres="a" * 40, app="b" * 40)
    assert EnvSources(settings, passwords, {}).changed_passwords() == ["POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD"]
    same = {"POSTGRES_PASSWORD": "a" * 40, "POSTGRES_APP_PASSWORD": "b" * 40}
    assert EnvSources(settings, passwords, same).changed_passwords() == []
    assert EnvSources(settings, passwords, {**same, "POSTGRES_APP_PASSWORD": "c"}).changed_passwords() == [
        "POSTGRES_APP_PASSWORD"]


def test_webhook_url_rules_never_echo_it():
    assert check_webhook({}) == []
    assert check_webhook({WEBHOOK_ENV_VAR: "https://hooks.slack.com/services/T0/B0/xyz"}) == []
    for bad in ("hooks.example.com/secret-token", "https://h/x y", "ftp://h/secret-token", "https://h/a'b"):
        problems = check_webhook({WEBHOOK_ENV_VAR: bad})
        assert len(problems) == 1 and WEBHOOK_ENV_VAR in problems[0]
        assert "secret-token" not in problems[0] and bad not in problems[0]


def test_monitor_interval_range():
    assert check_monitor({"monitor_interval": 60}) == []
    assert "between 10 and 3600" in check_monitor({"monitor_interval": 5})[0]


def test_known_defaults_reach_the_server_whole():
    assert set(checks.known_defaults().split()) == {p for p in KNOWN_DEFAULT_PASSWORDS if p}


def test_https_and_the_redirect_fail_while_caddy_is_stopped(tmp_path):
    """Nothing serves 443 or 80 then: a fail (whose recovery means something), not a
    cannot-check. Run with lib.sh and checks.sh, a stand-in docker showing Caddy exited."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("""#!/bin/sh
case "$1" in
  ps) echo caddy1 ;;
  inspect) echo "/srq-hpn-caddy exited none 2026-01-01T00:00:00Z 0" ;;
esac
""")
    (bin_dir / "docker").chmod(0o755)
    config = tmp_path / "deploy.env"
    config.write_text(f"APP_DIR={tmp_path}\nSTATE_DIR={tmp_path}\nENV_FILE=.env.production\nDOMAIN=example.com\n"
                      "CADDY_SERVICE=caddy\nDB_SERVICE=db\nCADDY_TLS=letsencrypt\n")
    done = subprocess.run(
        ["bash", "-c", f'. "{render.SERVER_PROGRAMS}/lib.sh"; . "{render.SERVER_PROGRAMS}/checks.sh"; '
                       "run_check https; run_check http_redirect"],
        capture_output=True, text=True, timeout=30,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SRQ_HPN_CONFIG": str(config)})
    https, redirect = (line.split("\t") for line in done.stdout.splitlines())
    assert https[:2] == ["https", "fail"] and "Caddy is not running" in https[2], done.stdout + done.stderr
    assert redirect[:2] == ["http_redirect", "fail"] and "Caddy is not running" in redirect[2]


def _not_applicable(item: str, **env: str) -> str:
    done = subprocess.run(["bash", "-c", '. "$0"; not_applicable "$1"', str(JUDGE), item],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env}, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("item, env, why", [
    ("db_port", {}, ""),
    ("https", {"ROLE": "server"}, ""),
    ("https", {"ROLE": "app", "PRIVATE_ADDRESS": "10.0.0.5"}, "HTTPS is the edge's: this app server answers plain "
     "HTTP on 10.0.0.5:80 only (run the checklist on the edge)"),
    ("db_port", {"DB_HOST": "db.example.net", "DB_PORT": "5432"}, "the database is external (db.example.net:5432): "
     "nothing of it listens here, and its exposure is the provider's"),
    ("wal_archive", {"DB_HOST": "db.example.net"}, "the database is external (db.example.net): its point-in-time "
     "recovery is the provider's (turn it on in its console); the logical backups still run"),
    ("backups", {"ROLE": "app", "BACKUPS_ON": "app1"}, "the group's shared database is backed up, and its backups "
     "drilled, on app1"),
    ("backups", {"ROLE": "app", "BACKUPS_ON": ""}, ""),
    ("passwords", {"ROLE": "edge"}, "the edge holds no password and no secret of the app (Caddy and its certificate "
     "only)"),
    ("https", {"ROLE": "edge"}, ""),
])
def test_items_that_are_not_a_servers_to_judge_say_why(item, env, why):
    assert _not_applicable(item, **env) == why
