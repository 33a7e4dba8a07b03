"""The site's certificate from an ACME server: Caddy's last attempt read from its own log
lines (as Caddy 2.6 writes them against Pebble), why it failed and what the operator does,
the preflight's DNS warning, and the facts' answers."""

import json

import pytest

from tasks import acme
from tasks.facts import CaddyAcmeLog, DomainAddresses, ServedCertificate
from tasks.operations.services import app_problems, failed_checks, without_certificate

DOMAIN = "shop.example.org"
CA = "https://acme.test:14000/dir"


def entry(msg, ts=1795987465.0, **fields):
    return {"level": "error" if "fail" in msg or "could not" in msg or msg == "will retry" else "info",
            "ts": ts, "msg": msg, **fields}


LOADED = entry("enabling automatic TLS certificate management", logger="http", domains=[DOMAIN])
STARTS = entry("obtaining certificate", logger="tls.obtain", identifier=DOMAIN)
HTTP_01_NXDOMAIN = entry(
    "challenge failed", ts=1795987466.16, logger="http.acme_client", identifier=DOMAIN, challenge_type="http-01",
    status_code=400, problem_type="urn:ietf:params:acme:error:connection",
    error=f'Get "http://{DOMAIN}:80/.well-known/acme-challenge/-R1H": could not resolve URL '
          f'"http://{DOMAIN}:80/.well-known/acme-challenge/-R1H"')
TLS_ALPN_NXDOMAIN = entry(
    "challenge failed", ts=1795987467.42, logger="http.acme_client", identifier=DOMAIN,
    challenge_type="tls-alpn-01", status_code=400, problem_type="urn:ietf:params:acme:error:malformed",
    error=f'Could not resolve URL "{DOMAIN}"')


def issuer_error(error):
    return entry("could not get certificate from issuer", ts=1795987467.43, logger="tls.obtain", identifier=DOMAIN,
                 issuer="acme.test:14000-dir", error=error)


RETRY = entry("will retry", ts=1795987467.44, logger="tls.obtain", attempt=1, retrying_in=60, elapsed=1.5,
              error=f"[{DOMAIN}] Obtain: [{DOMAIN}] solving challenge: {DOMAIN}: ...")
FAILED_ATTEMPT = [LOADED, STARTS, HTTP_01_NXDOMAIN, TLS_ALPN_NXDOMAIN,
                  issuer_error(f'HTTP 400 urn:ietf:params:acme:error:malformed - Could not resolve URL "{DOMAIN}"'),
                  RETRY]


def test_the_last_attempt_after_the_last_load_of_caddys_configuration():
    assert acme.last_attempt([], DOMAIN).state == acme.IDLE
    assert acme.last_attempt([LOADED], DOMAIN).state == acme.IDLE  # a certificate from storage: nothing to do
    assert acme.last_attempt([LOADED, STARTS], DOMAIN).state == acme.OBTAINING
    failed = acme.last_attempt(FAILED_ATTEMPT, DOMAIN)
    assert failed.state == acme.FAILED
    assert [e["msg"] for e in failed.shown] == ["challenge failed", "challenge failed",
                                                "could not get certificate from issuer", "will retry"]
    # A reload (the deploy's, when Caddy has no certificate): what came before no longer counts;
    # the old job's cancellation is no failure.
    canceled = entry("job failed", logger="tls", error=f"{DOMAIN}: obtaining certificate: context canceled")
    assert acme.last_attempt([*FAILED_ATTEMPT, LOADED, canceled], DOMAIN).state == acme.IDLE
    assert acme.last_attempt([*FAILED_ATTEMPT, LOADED, canceled, STARTS], DOMAIN).state == acme.OBTAINING
    obtained = entry("certificate obtained successfully", logger="tls.obtain", identifier=DOMAIN)
    assert acme.last_attempt([*FAILED_ATTEMPT, LOADED, STARTS, obtained], DOMAIN).state == acme.OBTAINED
    # A retry of Caddy's own, without a reload: its newest attempt decides.
    assert acme.last_attempt([*FAILED_ATTEMPT, STARTS], DOMAIN).state == acme.OBTAINING
    # Another domain's lines are not this one's.
    other = [{**e, "identifier": "other.example.org"} for e in FAILED_ATTEMPT[1:5]]
    assert acme.last_attempt([LOADED, *other], DOMAIN).state == acme.IDLE


def test_caddys_lines_as_an_operator_reads_them():
    assert acme.log_line(HTTP_01_NXDOMAIN) == (
        '21:24:26 challenge failed (http-01): urn:ietf:params:acme:error:connection: Get '
        f'"http://{DOMAIN}:80/.well-known/acme-challenge/-R1H": could not resolve URL '
        f'"http://{DOMAIN}:80/.well-known/acme-challenge/-R1H"')
    assert acme.log_line(RETRY) == "21:24:27 will retry (in 60s, attempt 1)"
    assert acme.log_line(FAILED_ATTEMPT[4]) == (
        "21:24:27 could not get certificate from issuer (issuer acme.test:14000-dir): HTTP 400 "
        f'urn:ietf:params:acme:error:malformed - Could not resolve URL "{DOMAIN}"')
    assert len(acme.log_line(entry("challenge failed", error="x" * 1000))) == 320


CONTEXT = acme.Context(DOMAIN, ("192.168.80.5",), CA, "ops..team@example.org")


def failure(*challenges, issuer=""):
    lines = [STARTS, *[entry("challenge failed", identifier=DOMAIN, challenge_type=kind, problem_type=problem,
                             error=error) for kind, problem, error in challenges]]
    return acme.Attempt(acme.FAILED, tuple(lines + [issuer_error(issuer), RETRY]))


LETS_ENCRYPT = "urn:ietf:params:acme:error:"


@pytest.mark.parametrize("attempt, kind, what, todo", [
    # Pebble's words, then Let's Encrypt's (Boulder's) for the same cause.
    (acme.Attempt(acme.FAILED, tuple(FAILED_ATTEMPT[1:])), "dns",
     f"{CA} could not resolve {DOMAIN}",
     f"point {DOMAIN}'s A record at this server (192.168.80.5); once it resolves there (dig +short {DOMAIN}), "
     "deploy again"),
    (failure(("http-01", LETS_ENCRYPT + "dns", f"DNS problem: NXDOMAIN looking up A for {DOMAIN} - check that a DNS "
              "record exists for this domain")), "dns", None, None),
    (failure(("http-01", LETS_ENCRYPT + "connection", f'Get "http://{DOMAIN}/.well-known/acme-challenge/x": dial tcp '
              "192.168.80.5:80: i/o timeout"),
             ("tls-alpn-01", LETS_ENCRYPT + "connection", "dial tcp 192.168.80.5:443: i/o timeout")), "unreachable",
     f"{CA} could not connect to {DOMAIN} on port 80 or 443",
     f"open ports 80 and 443 to the internet (a firewall, a cloud security group) and make sure {DOMAIN}'s A record "
     "is this server (192.168.80.5), then deploy again"),
    (failure(("http-01", LETS_ENCRYPT + "connection", "203.0.113.7: Fetching http://shop.example.org/.well-known/"
              "acme-challenge/x: Timeout during connect (likely firewall problem)")), "unreachable", None, None),
    # Pebble, behind a firewall that drops ports 80 and 443: its tls-alpn-01 failure is "unauthorized".
    (failure(("tls-alpn-01", LETS_ENCRYPT + "unauthorized", "Failed to connect to 172.19.0.6:443 for the tls-alpn-01 "
              "challenge"),
             ("http-01", LETS_ENCRYPT + "connection", 'Get "http://shop.example.org:80/.well-known/acme-challenge/x": '
              "context deadline exceeded (Client.Timeout exceeded while awaiting headers)")), "unreachable", None, None),
    # Another server answers on port 80 (404), nothing on 443: it is the other server.
    (failure(("http-01", LETS_ENCRYPT + "unauthorized", "203.0.113.7: Invalid response from http://shop.example.org/"
              ".well-known/acme-challenge/x: 404"),
             ("tls-alpn-01", LETS_ENCRYPT + "connection", "203.0.113.7: Connection refused")), "elsewhere", None, None),
    (failure(("http-01", LETS_ENCRYPT + "unauthorized", "203.0.113.7: Invalid response from http://shop.example.org/"
              ".well-known/acme-challenge/x: 404")), "elsewhere", None, None),
    (failure(issuer=f"HTTP 400 {LETS_ENCRYPT}rejectedIdentifier - Order included an identifier for which issuance is "
             f'forbidden by policy: "{DOMAIN}"'), "refused",
     f"{CA} refuses to issue a certificate for {DOMAIN} (its policy)", None),
    (failure(issuer=f"HTTP 429 {LETS_ENCRYPT}rateLimited - Error creating new order :: too many certificates (5) "
             f"already issued for this exact set of domains in the last 168 hours: {DOMAIN}, retry after "
             "2026-12-01T00:00:00Z"), "rate-limited", None, None),
    (failure(issuer=f"registering account [mailto:ops..team@example.org] with server: provisioning client: attempt 1: "
             f"https://acme.test:14000/sign-me-up: HTTP 400 {LETS_ENCRYPT}invalidContact - contact email "
             '"ops..team@example.org" is invalid'), "email",
     f"{CA} refused the account's email address (caddy_acme_email = ops..team@example.org)",
     "set caddy_acme_email to a working address of yours (or leave it empty), then deploy again"),
    (failure(issuer=f"HTTP 400 {LETS_ENCRYPT}invalidContact - Error creating new account :: contact email has "
             "forbidden domain \"example.com\""), "email", None, None),
    (failure(issuer=f"HTTP 400 {LETS_ENCRYPT}badNonce - JWS has an invalid anti-replay nonce: \"x\""), "rejected",
     None, None),
    (failure(issuer='provisioning client: performing request: Get "https://acme.test:14000/dir": tls: failed to '
             "verify certificate: x509: certificate signed by unknown authority"), "trust", None,
     "set caddy_acme_ca_root to that server's root certificate (PEM), then deploy again"),
    (failure(issuer='provisioning client: performing request: Get "https://acme.test:14000/dir": dial tcp: lookup '
             "acme.test on 127.0.0.11:53: no such host"), "acme-server", None, None),
    (failure(issuer="something new"), "other", f"Caddy could not get one from {CA}", None),
])
def test_why_an_attempt_failed_and_what_to_do(attempt, kind, what, todo):
    cause = acme.cause_of(attempt, CONTEXT)
    assert cause.kind == kind, cause
    if what:
        assert cause.what == what
    if todo:
        assert cause.todo == todo


def test_lets_encrypt_is_named_when_no_directory_is_set():
    cause = acme.cause_of(acme.Attempt(acme.FAILED, tuple(FAILED_ATTEMPT[1:])), acme.Context(DOMAIN))
    assert cause.what == f"Let's Encrypt could not resolve {DOMAIN}"
    assert cause.todo.startswith(f"point {DOMAIN}'s A record at this server's address;")


def test_the_explanation_says_why_shows_caddys_lines_says_the_app_is_up_and_what_to_do():
    lines, last = acme.explanation(acme.last_attempt(FAILED_ATTEMPT, DOMAIN), CONTEXT, "srq-hpn-caddy",
                                   "checked on this server without TLS, ...")
    assert lines[0] == f"No certificate for {DOMAIN}: {CA} could not resolve {DOMAIN}."
    assert lines[1] == "Caddy's last lines about it (docker logs srq-hpn-caddy):"
    assert [line.split(" ", 5)[4] for line in lines[2:6]] == ["challenge", "challenge", "could", "will"]
    assert "(http-01)" in lines[2] and "(tls-alpn-01)" in lines[3]
    assert lines[6] == "The app itself is up: checked on this server without TLS, ...."
    assert lines[7].startswith(f"To do: point {DOMAIN}'s A record at this server (192.168.80.5)")
    assert lines[7].endswith("Caddy keeps asking on its own meanwhile.")
    assert last == (f"no certificate for {DOMAIN}: {CA} could not resolve {DOMAIN}; point {DOMAIN}'s A record at "
                    f"this server (192.168.80.5); once it resolves there (dig +short {DOMAIN}), deploy again")


def test_the_preflight_warns_when_the_domain_does_not_point_at_the_server():
    assert acme.dns_warning(DOMAIN, ["192.168.80.5"], ["192.168.80.5", "10.0.0.2"], CA) == []
    nowhere = acme.dns_warning(DOMAIN, [], ["192.168.80.5"], CA)
    assert nowhere[0] == (f"Warning: {DOMAIN} does not resolve (asked from this server; its addresses: "
                          "192.168.80.5).")
    assert f"{CA} validates {DOMAIN} by connecting to the address its DNS gives, on port 80 or 443" in nowhere[1]
    elsewhere = acme.dns_warning(DOMAIN, ["203.0.113.7"], ["192.168.80.5"], "")
    assert elsewhere[0] == (f"Warning: {DOMAIN} resolves to 203.0.113.7, not to an address of this server "
                            "(192.168.80.5).")
    assert "Let's Encrypt validates" in elsewhere[1] and "only behind NAT" in elsewhere[1]
    assert acme.reserved("srq-hpn.test") and acme.reserved("shop.internal") and not acme.reserved(DOMAIN)


def test_the_checks_tell_a_missing_certificate_from_a_stack_that_is_down():
    tls = {"status": 0, "body": "curl: (35) TLS connect error: error:0A000438:SSL routines::tlsv1 alert internal error"}
    no_certificate = {"/": tls, "/api/health": tls, "/api/db-health": tls,
                      "http-redirect": {"status": 308, "body": f"https://{DOMAIN}/"}}
    assert without_certificate(no_certificate, DOMAIN)
    assert len(failed_checks(no_certificate, DOMAIN)) == 3
    caddy_down = {**no_certificate, "http-redirect": {"status": 0, "body": "curl: (7) Failed to connect"}}
    assert not without_certificate(caddy_down, DOMAIN)
    up = {"/": {"status": 200, "body": "<html>"}, "/api/health": {"status": 200, "body": '{"ok":true,"service":"api"}'},
          "/api/db-health": {"status": 200, "body": '{"db_ok":true,"now":"2026"}'}}
    assert not without_certificate({**no_certificate, **up}, DOMAIN)
    assert app_problems(up, "http://") == []
    assert app_problems({**up, "/api/db-health": {"status": 500, "body": "{}"}}, "http://") == [
        "http:///api/db-health answered 500 '{}' (wanted db_ok: true)"]


def test_the_facts_read_their_answers():
    served = ServedCertificate().process([
        "issuer=CN = Pebble Intermediate CA 14c8bd", "serial=4E75DD0C2A00FFF9", "notAfter=Feb 27 21:26:33 2027 GMT",
        "error=depth=0 CN = shop.example.org"])
    assert served == {"served": True, "issuer": "Pebble Intermediate CA 14c8bd", "serial": "4E75DD0C2A00FFF9",
                      "not_after": "Feb 27 21:26:33 2027 GMT"}
    assert ServedCertificate().process(["error=40D7:error:0A000438:SSL routines::tlsv1 alert internal error"]) == {
        "served": False, "error": "40D7:error:0A000438:SSL routines::tlsv1 alert internal error"}
    assert DomainAddresses().process(["resolved 192.168.80.5", "server 192.168.80.5", "server 10.0.0.2"]) == {
        "resolved": ["192.168.80.5"], "server": ["192.168.80.5", "10.0.0.2"]}
    log = CaddyAcmeLog().process([json.dumps(e) for e in FAILED_ATTEMPT] + ["not json", "[1]"])
    assert log == FAILED_ATTEMPT
    assert CaddyAcmeLog.snapshot is False  # asked live, on the way to an explanation only
    assert "docker logs --since" in CaddyAcmeLog().command("srq-hpn-caddy", DOMAIN)
