"""The guide's Production Checklist as this deploy checks it on a server: the items,
in the guide's order and words; what the monitor watches; the thresholds.

Pure data and formatting (unit-tested). The checks themselves are the server's
programs (templates/server/checks-*.sh, one function per item), so the checklist
command and the monitor's timer run the very same code; deploy.env gives them the
values below.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks import layout
from tasks.backup_settings import DEFAULT_BACKUP_MAX_AGE_HOURS
from tasks.settings import Settings
from tasks.validation import KNOWN_DEFAULT_PASSWORDS, MIN_DISTINCT_PASSWORD_CHARS, MIN_PASSWORD_LENGTH

PASS, WARN, FAIL, CANNOT = "pass", "warn", "fail", "cannot-check"
# An item that does not apply to the server's role (an app server's database port, an edge's
# backups): said, with the reason, and never a problem.
NOT_APPLICABLE = "n/a"
STATUSES = (PASS, WARN, FAIL, CANNOT, NOT_APPLICABLE)


@dataclass(frozen=True)
class Item:
    key: str  # the check's name on the server (check_<key>) and in the JSON
    section: str  # the guide's heading
    title: str  # the guide's wording of the item


SECURITY, DOMAIN, DATABASE, MONITORING, MAINTENANCE = (
    "Security", "Domain & HTTPS", "Database", "Monitoring", "Ongoing Maintenance")

ITEMS = (
    Item("passwords", SECURITY, "Strong, unique passwords"),
    Item("secrets_in_git", SECURITY, "Passwords not in git"),
    Item("env_file", SECURITY, "Secrets file readable by root only"),
    Item("db_port", SECURITY, "Database port (5432) not exposed"),
    Item("app_ports", SECURITY, "API/Web ports (8000, 3000) not exposed, only Caddy"),
    Item("api_superuser", SECURITY, "Superuser credentials not shared with the app"),
    Item("domain", DOMAIN, "DOMAIN set correctly"),
    Item("dns", DOMAIN, "Domain DNS pointing to the server"),
    Item("caddy", DOMAIN, "Caddy container running and healthy"),
    Item("https", DOMAIN, "HTTPS working, certificate valid and renewed"),
    Item("http_redirect", DOMAIN, "HTTP redirects to HTTPS"),
    Item("migrations", DATABASE, "Tested migrations locally before deploying"),
    Item("app_role", DATABASE, "Database initialized with the app user"),
    Item("backups", DATABASE, "Automated backups"),
    Item("wal_archive", DATABASE, "Automated backups: point-in-time recovery (WAL archive)"),
    Item("restore_drill", DATABASE, "Restoring from backup tested (quarterly)"),
    Item("monitoring", MONITORING, "Monitoring/alerts set up"),
    Item("containers", MONITORING, "Container health"),
    Item("logs", MONITORING, "Log aggregation configured (optional)"),
    Item("disk", MAINTENANCE, "Disk space"),
    Item("images", MAINTENANCE, "Docker images updated"),
    Item("password_age", MAINTENANCE, "Passwords rotated periodically"),
)
BY_KEY = {item.key: item for item in ITEMS}
# The meta-item: whether the server's check programs are the ones of this repository.
PROGRAMS = Item("programs", "Checks", "The server's check programs are this deploy's")

# What the monitor watches every minute: the guide's "container health", and what
# fails silently (certificate renewal, disk space, backups, log shipping, and WAL
# archiving: a failing archive fills the disk).
MONITORED = ("containers", "caddy", "https", "disk", "backups", "wal_archive", "logs")

# Thresholds: the guide's certificate and disk limits, the backups' daily rhythm,
# the quarterly restore test.
CERT_WARN_DAYS, CERT_FAIL_DAYS = 14, 3
DISK_WARN_PERCENT, DISK_FAIL_PERCENT = 20, 10
DRILL_MAX_AGE_DAYS = 90
# The WAL archive's off-server copy may lag its newest segment by this many seconds.
WAL_SHIP_MAX_DELAY = 300
# Log shipping fails when the oldest journal entry the collector has not taken is older
# than this (systemd-journal-upload follows the journal: it sends each line at once).
LOG_SHIPPING_MAX_LAG_SECONDS = 300


def server_values(settings: Settings, backup_max_age_hours: int = DEFAULT_BACKUP_MAX_AGE_HOURS) -> dict:
    """What the checks and the monitor read from deploy.env besides what every server
    program reads (tasks.render.deploy_env: the directories, BACKUP_DIR among them); no
    secret. A key of both would be written twice, and the second would win."""
    paths = settings.paths
    return {
        "CADDY_TLS": settings.caddy_tls,
        "CADDY_ROOT_CA": layout.CADDY_ROOT_CA,
        "ACME_CA_ROOT": paths.acme_ca_root if settings.caddy_acme_ca_root else "",
        "CERT_WARN_DAYS": CERT_WARN_DAYS,
        "CERT_FAIL_DAYS": CERT_FAIL_DAYS,
        "DISK_WARN_PERCENT": DISK_WARN_PERCENT,
        "DISK_FAIL_PERCENT": DISK_FAIL_PERCENT,
        "IMAGE_MAX_AGE_DAYS": settings.checklist_image_max_age_days,
        "PASSWORD_MAX_AGE_DAYS": settings.checklist_password_max_age_days,
        "MIN_PASSWORD_LENGTH": MIN_PASSWORD_LENGTH,
        "MIN_DISTINCT_PASSWORD_CHARS": MIN_DISTINCT_PASSWORD_CHARS,
        "KNOWN_DEFAULT_PASSWORDS": known_defaults(),
        "SECRETS_RECORD": paths.secrets_record,
        "BACKUP_TIMER": layout.BACKUP_TIMER,
        "BACKUP_FILES": layout.BACKUP_MANIFEST,  # written last: a complete backup
        "BACKUP_PREFIX": layout.BACKUP_PREFIX,
        "BACKUP_MAX_AGE_HOURS": backup_max_age_hours,
        "WAL_SHIPPED": paths.wal_shipped,
        "WAL_SHIP_MAX_DELAY": WAL_SHIP_MAX_DELAY,
        "DRILL_RECORD": paths.drill_record,
        "DRILL_MAX_AGE_DAYS": DRILL_MAX_AGE_DAYS,
        "MIGRATION_RECORD": paths.migration_record,
        "MIGRATION_REHEARSAL": "on" if settings.migration_rehearsal else "off",
        "MONITOR_TIMER": layout.MONITOR_TIMER,
        "MONITOR_INTERVAL": settings.monitor_interval,
        "MONITOR_CHECKS": " ".join(MONITORED),
        "MONITOR_DIR": paths.monitor_dir,
        "MONITOR_WEBHOOK_FILE": layout.MONITOR_WEBHOOK_FILE,
        "DEPLOY_LOCK": paths.lock,
        "LOG_SHIPPING_URL": settings.log_shipping_url,
        "LOG_SHIPPING_SERVICE": layout.JOURNAL_UPLOAD_SERVICE,
        "LOG_SHIPPING_STATE": layout.JOURNAL_UPLOAD_STATE,
        "LOG_SHIPPING_MAX_LAG": LOG_SHIPPING_MAX_LAG_SECONDS,
        "LOG_DRIVER": layout.LOG_DRIVER,
    }


def known_defaults() -> str:
    """The passwords never acceptable, as the server's checks read them (space-separated)."""
    return " ".join(sorted(password for password in KNOWN_DEFAULT_PASSWORDS if password))


def ordered(records: list[dict]) -> list[dict]:
    """The server's records in the checklist's order, each with its section and title;
    an item the server does not know is cannot-check, one this checklist does not
    know comes last."""
    found = {record.get("item"): record for record in records if isinstance(record, dict)}
    result = []
    for item in ITEMS:
        record = found.pop(item.key, None) or {
            "status": CANNOT, "not_set_up": False,
            "evidence": "the server's check programs have no such check (deploy to update them)"}
        result.append(entry(item, record))
    for key, record in found.items():
        result.append(entry(Item(str(key), "Other", str(key)), record))
    return result


def entry(item: Item, record: dict) -> dict:
    status = record.get("status")
    return {
        "item": item.key,
        "section": item.section,
        "title": item.title,
        "status": status if status in STATUSES else CANNOT,
        "not_set_up": bool(record.get("not_set_up")),
        "evidence": str(record.get("evidence", "")),
    }


def line(result: dict) -> str:
    """One printed line of the checklist."""
    return f"{result['status']:<12}  {result['title']} [{result['item']}]: {result['evidence']}"


def summary(results: list[dict]) -> str:
    counts = {status: sum(1 for r in results if r["status"] == status) for status in STATUSES}
    return ", ".join(f"{counts[status]} {status}" for status in STATUSES
                     if status != NOT_APPLICABLE or counts[status])
