"""Scenario 60: the production HTTPS path, end to end, against a real ACME server: Pebble, the
ACME test server of the Let's Encrypt project, on the test network, validating the test
domains at the addresses the test DNS gives (tests/testbed/acme.py). The deploy runs with
`caddy_tls = "letsencrypt"`, `caddy_acme_ca` its directory and `caddy_acme_ca_root` its roots,
as with a company's own ACME server.

On one server, as an operator lives it:
1. a first deploy before the domain's DNS points at the server: the preflight warns before
   anything changes; the deploy stops as soon as Caddy says it could not get a certificate,
   with Caddy's own lines, the app checked without TLS and what to do, and ends with that;
2. DNS pointed at the server: the next deploy converges with nothing else done (the plan has
   Caddy ask again), with a certificate issued by Pebble and verified against its root, HTTP
   redirected, and the checklist's `https` line naming the issuer;
3. the certificate survives a redeploy and a reboot without a new order;
then, on a second server, the failures an operator meets, each injected and explained:
4. ports 80 and 443 closed by the server's firewall; an order the ACME server refuses (its
   policy); an account email it refuses; an ACME server rejecting every request;
and last, back on the first server:
5. Caddy renews the short-lived certificate by itself (Pebble issues them for 12 minutes; Caddy
   renews in the last third of a lifetime, at its check every 10 minutes), and the checklist
   reports the new expiry.
"""

from __future__ import annotations

import re
import socket
import ssl
import time

import pytest

from tests.integration.helpers import (
    assert_no_traceback,
    assert_stack_is_up,
    audit_log,
    checklist,
    deploy,
    lock_is_free,
    plan_then_run,
)
from tests.testbed import harness

SHOP = "shop.example.org"  # the first server's domain
LIFETIME = 12 * 60  # the certificates Pebble issues, in seconds
# The second server's domains, one per injected failure.
CLOSED, REFUSED, MAIL, BUSY = "closed.example.org", "refused.example.org", "mail.example.org", "busy.example.org"
NOT_AN_EMAIL = "ops..team@example.org"  # well-formed to the preflight, refused by the ACME server
CHECKS = "answer through Caddy"  # the name of the operation that checks the stack


@pytest.fixture(scope="module")
def dns(testbed):
    return testbed.acme_dns()


@pytest.fixture(scope="module")
def pebble(testbed, dns):
    """The ACME server: short-lived certificates, and a domain it refuses by policy."""
    return testbed.start_pebble("acme.test", validity=LIFETIME, blocked=(REFUSED,))


@pytest.fixture(scope="module")
def roots(testbed, pebble):
    """caddy_acme_ca_root: the ACME server's HTTPS CA and the root of what it issues."""
    return pebble.write_roots(testbed.workdir / "acme-roots.pem")


@pytest.fixture(scope="module")
def issuing_root(testbed, pebble):
    """Only the root of the certificates Pebble issues: what an outside check verifies them against."""
    return pebble.write_issuing_root(testbed.workdir / "pebble-root.pem")


@pytest.fixture(scope="module")
def acme_server(testbed, dns):
    server = testbed.start_server("acme", test_dns=True)
    yield server
    server.remove()


@pytest.fixture(scope="module")
def failures_server(testbed, dns):
    server = testbed.start_server("acme-failures", test_dns=True)
    yield server
    server.remove()


@pytest.fixture(scope="module")
def timeline():
    """When things happened in this file (the renewal at the end depends on the reboot's time)."""
    return {}


def acme_settings(testbed, pebble, roots, domain: str, **more):
    return testbed.settings(srq_hpn_domain=domain, caddy_tls="letsencrypt", caddy_acme_ca=pebble.directory,
                            caddy_acme_ca_root=str(roots), **more)


def served_certificate(server, domain: str, cafile) -> dict:
    """The certificate the server answers HTTPS with, from outside, verified against `cafile`."""
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection((harness.LOOPBACK, server.https_port), timeout=15) as raw:
        with context.wrap_socket(raw, server_hostname=domain) as tls:
            certificate = tls.getpeercert()
    issuer = dict(pair for field in certificate["issuer"] for pair in field)
    return {"serial": certificate["serialNumber"], "issuer": issuer["commonName"],
            "not_after": ssl.cert_time_to_seconds(certificate["notAfter"])}


def line_at(run, *texts: str) -> float:
    """When the first line holding each of `texts` came, in seconds since the run started."""
    for line in run.lines:
        if all(text in line.text for text in texts):
            return line.at
    raise AssertionError(f"no line holds {texts!r}:\n{run.output[-3000:]}")


def last_line(run) -> str:
    return [line for line in run.output.splitlines() if line.strip()][-1]


def failed_deploy_explained(server, settings, *words: str):
    """A deploy that fails explaining why it has no certificate: the explanation's lines and
    the seconds from the start of the stack's checks to the explanation (the run, stamped)."""
    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "-y", stamped=True)
    assert run.returncode != 0, f"the deploy succeeded:\n{run.describe()}"
    assert_no_traceback(run)
    domain = settings["srq_hpn_domain"]
    explained = line_at(run, f"No certificate for {domain}: ")
    said_after = explained - line_at(run, "Starting operation", CHECKS)
    lines = [line.split("] ", 1)[1] for line in run.stderr.splitlines()
             if line.strip().startswith("[127.0.0.1] ") and line.split("] ", 1)[1].startswith(
                 ("No certificate", "Caddy's last lines", "  | ", "The app itself", "To do:"))]
    for word in words:
        assert word in run.output, f"{word!r} not in the output:\n{run.output[-4000:]}"
    assert "The app itself is up: checked on this server without TLS, srq-hpn-web answers / with 200, " \
           "srq-hpn-api answers /api/health and /api/db-health (db_ok: true)." in lines, lines
    assert "No hosts remaining" not in run.output
    assert last_line(run).startswith(f"--> Stopped on 127.0.0.1: no certificate for {domain}: "), last_line(run)
    assert said_after < settings.get("srq_hpn_verify_timeout", 120) / 2, (said_after, run.output[-3000:])
    assert lock_is_free(server) and audit_log(server)[-1]["result"].startswith("failed: ")
    assert_stack_is_up(server)
    print(f"--- {domain}: said {said_after:.1f}s into the checks, run {run.seconds:.0f}s ---")  # shown with -s
    print("\n".join(run.stderr.splitlines()[-16:]))
    return lines + [last_line(run)], said_after, run


# --- 1-3. One server, from before its DNS points at it to a certificate that lasts ------------


def test_a_first_deploy_before_dns_points_here_explains_itself(testbed, dns, pebble, roots, acme_server, timeline):
    dns.point(SHOP, None)  # a new domain: no A record yet
    settings = acme_settings(testbed, pebble, roots, SHOP)
    lines, said_after, run = failed_deploy_explained(
        acme_server, settings,
        f"Warning: {SHOP} does not resolve (asked from this server; its addresses: {acme_server.address()}).",
        f"The certificate: {pebble.directory} validates {SHOP} by connecting to the address its DNS gives")
    # The warning came before anything changed on the server.
    assert line_at(run, f"Warning: {SHOP} does not resolve") < line_at(run, "--> Beginning operation run")
    assert lines[0] == f"No certificate for {SHOP}: {pebble.directory} could not resolve {SHOP}."
    assert lines[1] == "Caddy's last lines about it (docker logs srq-hpn-caddy):"
    caddys = [line for line in lines if line.startswith("  | ")]
    assert any("challenge failed (" in line and "Could not resolve" in line for line in caddys), caddys
    assert any("could not get certificate from issuer" in line for line in caddys), caddys
    assert f"To do: point {SHOP}'s A record at this server ({acme_server.address()}); once it resolves there " \
           f"(dig +short {SHOP}), deploy again. Caddy keeps asking on its own meanwhile." in lines
    timeline["dns_not_ready"] = {"lines": lines, "said_after": said_after, "seconds": run.seconds}


def test_the_next_deploy_once_dns_points_here_converges(testbed, dns, pebble, roots, issuing_root, acme_server,
                                                        timeline):
    dns.point(SHOP, acme_server.address())
    settings = acme_settings(testbed, pebble, roots, SHOP)
    lines, run = plan_then_run(acme_server, settings)  # --dry tells the truth: the same operations change
    assert f"reload Caddy in place (it has no certificate for {SHOP}: it asks {pebble.directory} again now)" \
        in lines, lines
    assert "Warning:" not in run.output  # the domain points here now
    timeline["issued"] = time.time()
    certificate = served_certificate(acme_server, SHOP, issuing_root)  # verified against Pebble's root
    assert certificate["issuer"].startswith("Pebble Intermediate CA"), certificate
    assert pebble.issued()[-1].lower().lstrip("0") == certificate["serial"].lower().lstrip("0")
    assert harness.https_get(acme_server, "/api/health", issuing_root, domain=SHOP).text == \
        '{"ok":true,"service":"api"}'
    redirect = harness.http_get(acme_server, "/", domain=SHOP)
    assert redirect.status in (301, 302, 307, 308) and redirect.header("location") == f"https://{SHOP}/"
    found = checklist(acme_server, settings)
    assert found.statuses["https"] == "pass", found.evidence("https")
    assert re.search(rf"certificate valid for {re.escape(SHOP)} \(issuer Pebble Intermediate CA \w+, checked "
                     r"against the ACME server's root, caddy_acme_ca_root\), expires in ", found.evidence("https")), \
        found.evidence("https")
    assert found.statuses["http_redirect"] == "pass" and found.statuses["dns"] == "pass", found.items
    assert found.evidence("dns") == f"{SHOP} resolves to {acme_server.address()}, an address of this server"
    timeline["checklist_https"] = found.evidence("https")


def test_the_certificate_survives_a_redeploy_and_a_reboot_without_a_new_order(testbed, pebble, roots,
                                                                             issuing_root, acme_server, timeline):
    settings = acme_settings(testbed, pebble, roots, SHOP)
    before = served_certificate(acme_server, SHOP, issuing_root)
    issued = pebble.issued()
    run = deploy(acme_server, settings)
    assert run.changed_operations() == [], run.changed_operations()  # nothing to change: no reload either
    assert served_certificate(acme_server, SHOP, issuing_root) == before and pebble.issued() == issued

    timeline["rebooted"] = time.time()
    acme_server.reboot()

    def back():
        try:
            return served_certificate(acme_server, SHOP, issuing_root)
        except OSError:
            return None

    deadline = time.monotonic() + 180
    while back() is None:
        assert time.monotonic() < deadline, "HTTPS did not come back within 180 s of the reboot"
        time.sleep(1)
    assert back() == before and pebble.issued() == issued  # the same certificate, and no new order
    _, log = acme_server.exec("docker logs --since \"$(docker inspect --format '{{.State.StartedAt}}' srq-hpn-caddy)\" "
                              "srq-hpn-caddy 2>&1 | grep -c 'obtaining certificate' || true")
    assert log.strip() == "0", "Caddy ordered a certificate again after the reboot"
    assert harness.https_get(acme_server, "/api/health", issuing_root, domain=SHOP).status == 200


# --- 4. The failures an operator meets, each explained ------------------------------------------


def test_an_order_the_acme_server_refuses(testbed, dns, pebble, roots, failures_server, timeline):
    dns.point(REFUSED, failures_server.address())
    lines, said_after, _run = failed_deploy_explained(
        failures_server, acme_settings(testbed, pebble, roots, REFUSED), "rejectedIdentifier")
    assert lines[0] == f"No certificate for {REFUSED}: {pebble.directory} refuses to issue a certificate for " \
                       f"{REFUSED} (its policy)."
    timeline["refused"] = {"lines": lines, "said_after": said_after}


def test_ports_80_and_443_closed_by_a_firewall(testbed, dns, pebble, roots, failures_server, timeline):
    dns.point(CLOSED, failures_server.address())
    rule = "-i eth0 -p tcp -m multiport --dports 80,443 -j DROP"
    failures_server.exec(f"iptables -t raw -I PREROUTING {rule}")  # as a firewall that drops what is not SSH
    try:
        lines, said_after, _run = failed_deploy_explained(
            failures_server, acme_settings(testbed, pebble, roots, CLOSED), "challenge failed (tls-alpn-01)")
    finally:
        failures_server.exec(f"iptables -t raw -D PREROUTING {rule}")
    assert lines[0] == f"No certificate for {CLOSED}: {pebble.directory} could not connect to {CLOSED} on port " \
                       "80 or 443."
    assert any("challenge failed (" in line and "timeout" in line.lower() for line in lines), lines
    assert any(line.startswith("To do: open ports 80 and 443 to the internet") for line in lines), lines
    timeline["closed"] = {"lines": lines, "said_after": said_after}


def test_an_email_the_acme_server_refuses(testbed, dns, pebble, roots, failures_server, timeline):
    dns.point(MAIL, failures_server.address())
    lines, said_after, _run = failed_deploy_explained(
        failures_server, acme_settings(testbed, pebble, roots, MAIL, caddy_acme_email=NOT_AN_EMAIL), "invalidContact")
    assert lines[0] == f"No certificate for {MAIL}: {pebble.directory} refused the account's email address " \
                       f"(caddy_acme_email = {NOT_AN_EMAIL})."
    assert any(line.startswith("To do: set caddy_acme_email to a working address of yours") for line in lines), lines
    timeline["email"] = {"lines": lines, "said_after": said_after}


def test_an_acme_server_that_rejects_every_request(testbed, dns, failures_server, timeline):
    busy = testbed.start_pebble("acme-busy.test", nonce_reject=100)  # every good nonce rejected as bad
    dns.point(BUSY, failures_server.address())
    roots = busy.write_roots(testbed.workdir / "acme-busy-roots.pem")
    lines, said_after, _run = failed_deploy_explained(
        failures_server, acme_settings(testbed, busy, roots, BUSY), "badNonce")
    assert lines[0].startswith(f"No certificate for {BUSY}: {busy.directory} rejected Caddy's requests (badNonce")
    timeline["rejected"] = {"lines": lines, "said_after": said_after}


# --- 5. Renewal ---------------------------------------------------------------------------------------


def test_caddy_renews_the_certificate_and_the_checklist_reports_the_new_expiry(testbed, pebble, roots, issuing_root,
                                                                               acme_server, timeline):
    settings = acme_settings(testbed, pebble, roots, SHOP)
    first = served_certificate(acme_server, SHOP, issuing_root)
    # Caddy checks every 10 minutes from its start (the reboot), and renews in the last third.
    deadline = timeline.get("rebooted", time.time()) + 10 * 60 + 120
    renewed = first
    while renewed["serial"] == first["serial"]:
        assert time.time() < deadline, f"Caddy did not renew within 12 minutes of its start: {first}"
        time.sleep(5)
        try:
            renewed = served_certificate(acme_server, SHOP, issuing_root)
        except (OSError, ssl.SSLError):
            renewed = first  # expired meanwhile: keep waiting for the new one
    assert renewed["not_after"] > first["not_after"]
    _, log = acme_server.exec("docker logs srq-hpn-caddy 2>&1 | grep -E 'renewing certificate|certificate renewed "
                              "successfully' || true")
    assert "certificate renewed successfully" in log, log
    found = checklist(acme_server, settings)
    assert found.statuses["https"] == "pass", found.evidence("https")
    expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(renewed["not_after"]))
    assert f"({expiry}; lifetime " in found.evidence("https"), (expiry, found.evidence("https"))
    assert found.evidence("https") != timeline.get("checklist_https")
