"""Scenario 31: faults injected one at a time into the deployed server; the checklist
reports exactly that item failing (or warning, where the item is a warn), and every
other item as before. Each fault is undone after its test: the server is shared."""

import base64
import datetime
import re
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tasks import layout
from tests.integration.helpers import (
    APP_DIR,
    STATE_DIR,
    changed_items,
    checklist,
    recreate_with,
    restore,
    wait_until,
)
from tests.testbed import harness

ENV_FILE = f"{APP_DIR}/{layout.ENV_FILE}"
DB_CONTAINER, CADDY_CONTAINER = layout.CONTAINERS[layout.DB], layout.CONTAINERS[layout.CADDY]
PSQL = f"docker exec {DB_CONTAINER} psql -v ON_ERROR_STOP=1 -U srq_hpn srq_hpn -c"


@pytest.fixture(scope="module")
def baseline(deployed, server, testbed):
    """The checklist of the deployed server before any fault: nothing fails."""
    result = checklist(server, testbed.settings())
    assert result.run.returncode == 0, result.run.describe()
    return result


def check(server, testbed):
    return checklist(server, testbed.settings())


def check_with(server, testbed, fault: str, undo: str):
    """The checklist while a fault (a shell line on the server) is in place; undone after."""
    server.exec(fault)
    try:
        return check(server, testbed)
    finally:
        server.exec(undo)


def test_env_file_made_world_readable(baseline, server, testbed):
    after = check_with(server, testbed, f"chmod 644 {ENV_FILE}", f"chmod 600 {ENV_FILE}")
    assert changed_items(baseline, after) == {"env_file": "fail"}
    assert "mode 644" in after.evidence("env_file")
    assert after.run.returncode != 0
    assert "failing: env_file" in after.run.stderr


def test_caddy_stopped(baseline, server, testbed, caddy_ca):
    server.exec(f"docker stop {CADDY_CONTAINER}")
    try:
        after = check(server, testbed)
    finally:
        server.exec(f"docker start {CADDY_CONTAINER}")
        wait_for_https(server, caddy_ca)
    # Without Caddy nothing serves HTTPS nor the redirect: they fail, pointing at it.
    assert changed_items(baseline, after) == {"caddy": "fail", "https": "fail", "http_redirect": "fail"}
    assert f"{CADDY_CONTAINER} is exited" in after.evidence("caddy")
    assert "Caddy is not running" in after.evidence("https")
    assert "Caddy is not running" in after.evidence("http_redirect")


def test_app_role_granted_create_on_the_schema(baseline, server, testbed):
    after = check_with(server, testbed, f"{PSQL} 'GRANT CREATE ON SCHEMA public TO srq_hpn_app'",
                       f"{PSQL} 'REVOKE CREATE ON SCHEMA public FROM srq_hpn_app'")
    assert changed_items(baseline, after) == {"app_role": "fail"}
    assert "role srq_hpn_app may create objects in schema public" in after.evidence("app_role")


def test_database_published_on_all_addresses(baseline, server, testbed):
    recreate_with(server, layout.DB, 'services:\n  db:\n    ports: !override\n      - "5432:5432"')
    try:
        after = check(server, testbed)
    finally:
        restore(server, layout.DB)
    assert changed_items(baseline, after) == {"db_port": "fail"}
    assert "0.0.0.0:5432" in after.evidence("db_port")


def test_backup_timer_disabled(baseline, server, testbed):
    # Backups install srq-hpn-backup.timer; where none is installed yet, a timer of that
    # name stands in for it (it runs nothing).
    created = server.exec(f"systemctl cat {layout.BACKUP_TIMER}", check=False)[0] != 0
    if created:
        server.exec(STAND_IN_TIMER)
    try:
        server.exec(f"systemctl enable --now {layout.BACKUP_TIMER}")
        enabled = check(server, testbed)
        server.exec(f"systemctl disable --now {layout.BACKUP_TIMER}")
        disabled = check(server, testbed)
    finally:
        if created:
            server.exec(f"systemctl disable --now {layout.BACKUP_TIMER}; rm -f /etc/systemd/system/srq-hpn-backup.*; "
                        "systemctl daemon-reload")
        else:
            server.exec(f"systemctl enable --now {layout.BACKUP_TIMER}")
    assert enabled.statuses["backups"] in ("pass", "warn") and enabled.run.returncode == 0, enabled.items["backups"]
    assert changed_items(enabled, disabled) == {"backups": "fail"}
    assert f"{layout.BACKUP_TIMER} is disabled and inactive" in disabled.evidence("backups")


STAND_IN_TIMER = """cat > /etc/systemd/system/srq-hpn-backup.service <<'UNIT'
[Service]
Type=oneshot
ExecStart=/bin/true
UNIT
cat > /etc/systemd/system/srq-hpn-backup.timer <<'UNIT'
[Timer]
OnCalendar=daily
[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload"""


def test_certificate_close_to_expiry(baseline, server, testbed, caddy_ca):
    """Caddy serves a certificate from its own CA, issued 88 days ago for 90 days."""
    caddyfile = f"{STATE_DIR}/caddy/Caddyfile"
    _, original = server.exec(f"cat {caddyfile}")
    certificate, key = near_expiry_certificate(server, days_left=2)
    put_file(server, f"{STATE_DIR}/caddy/near-expiry.crt", certificate)
    put_file(server, f"{STATE_DIR}/caddy/near-expiry.key", key)
    server.exec(f"cp {caddyfile} /tmp/Caddyfile.orig && sed -i "
                "'s|^\\ttls internal$|\\ttls /etc/caddy/near-expiry.crt /etc/caddy/near-expiry.key|' "
                f"{caddyfile} && grep -q near-expiry {caddyfile}")
    try:
        reload_caddy(server)
        wait_until(lambda: served_days_left(server) < 3, "Caddy serves the certificate close to expiry")
        after = check(server, testbed)
    finally:
        server.exec(f"cat /tmp/Caddyfile.orig > {caddyfile} && rm -f /tmp/Caddyfile.orig "
                    f"{STATE_DIR}/caddy/near-expiry.*")
        reload_caddy(server)
        wait_for_https(server, caddy_ca)
    assert server.exec(f"cat {caddyfile}")[1] == original
    assert changed_items(baseline, after) == {"https": "fail"}
    assert "expires in 47 h" in after.evidence("https") or "expires in 48 h" in after.evidence("https")
    assert "lifetime 90 days" in after.evidence("https")


def test_disk_nearly_full(baseline, server, testbed):
    """A small file system over the backups' directory, 95 % full (what it held before
    is copied in first, so the backups look the same)."""
    backup_dir = layout.BACKUP_DIR
    created = server.exec(f"test -d {backup_dir}", check=False)[0] != 0
    server.exec(
        f"mkdir -p {backup_dir} && used=$(du -sb {backup_dir} | cut -f1) && size=$((used + 16777216)) && "
        "staging=$(mktemp -d) && mount -t tmpfs -o size=$size,mode=700 srq-hpn-test-full $staging && "
        f"cp -a {backup_dir}/. $staging/ && mount --move $staging {backup_dir} && rmdir $staging && "
        f"head -c $((size * 95 / 100 - used)) /dev/zero > {backup_dir}/.srq-hpn-test-fill"
    )
    try:
        after = check(server, testbed)
    finally:
        server.exec(f"umount {backup_dir}" + (f" && rmdir {backup_dir}" if created else ""))
    assert changed_items(baseline, after) == {"disk": "fail"}
    assert re.search(rf"{backup_dir}: [0-9]% free", after.evidence("disk")), after.evidence("disk")


def test_api_holding_the_superuser_password_is_a_warn(baseline, server, testbed):
    """The sample's compose file (as the guide's) gives the running api DATABASE_URL_ADMIN:
    a warn on the fresh server. An api recreated without it passes, and nothing else
    changes; recreated as deployed, the warn is back."""
    assert baseline.statuses["api_superuser"] == "warn"
    assert "srq-hpn-api (DATABASE_URL_ADMIN)" in baseline.evidence("api_superuser")
    recreate_with(server, layout.API, 'services:\n  api:\n    environment:\n      DATABASE_URL_ADMIN: ""')
    try:
        without = check(server, testbed)
    finally:
        restore(server, layout.API)
    again = check(server, testbed)
    assert changed_items(baseline, without) == {"api_superuser": "pass"}
    assert changed_items(baseline, again) == {}
    assert again.run.returncode == 0  # a warn never fails the run


# --- Faults of TLS -------------------------------------------------------------------

def near_expiry_certificate(server, days_left: int) -> tuple[bytes, bytes]:
    """A certificate for the domain signed by Caddy's own root, issued 88 days ago for 90
    days (so it is valid, and trusted like Caddy's, but close to expiry), and its key."""
    root_dir = layout.CADDY_ROOT_CA.rsplit("/", 1)[0]
    _, root_key = server.exec(["docker", "exec", CADDY_CONTAINER, "cat", f"{root_dir}/root.key"])
    _, root_pem = server.exec(["docker", "exec", CADDY_CONTAINER, "cat", f"{root_dir}/root.crt"])
    signer = serialization.load_pem_private_key(root_key.encode(), None)
    root = x509.load_pem_x509_certificate(root_pem.encode())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, harness.DOMAIN)]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days_left - 90))
        .not_valid_after(now + datetime.timedelta(days=days_left))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(harness.DOMAIN)]), critical=False)
        .sign(signer, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def put_file(server, path: str, content: bytes) -> None:
    server.exec(f"umask 077 && echo {base64.b64encode(content).decode()} | base64 -d > {path}")


def reload_caddy(server) -> None:
    server.exec(["docker", "exec", CADDY_CONTAINER, "caddy", "reload", "--config", "/etc/caddy/Caddyfile",
                 "--adapter", "caddyfile"])


def served_days_left(server) -> float:
    """Days until the certificate Caddy serves for the domain expires (as seen on the server)."""
    _, end = server.exec(f"openssl s_client -connect 127.0.0.1:443 -servername {harness.DOMAIN} </dev/null "
                         "2>/dev/null | openssl x509 -noout -enddate | cut -d= -f2 | xargs -I{} date -d {} +%s")
    return (int(end.strip()) - time.time()) / 86400


def wait_for_https(server, caddy_ca) -> None:
    """Caddy answers HTTPS again with a certificate of its own CA (bounded wait)."""
    def answers() -> bool:
        try:
            return harness.https_get(server, "/api/health", caddy_ca).status == 200
        except OSError:
            return False

    wait_until(answers, "Caddy answers HTTPS with its own certificate")
