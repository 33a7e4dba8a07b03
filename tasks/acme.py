"""The site's certificate from an ACME server (Let's Encrypt, or the one ``caddy_acme_ca``
names), as Caddy gets it: what its log says about the last attempt, why an attempt failed
and what the operator does about it; and, before the deploy, whether the domain points at
the server. Pure code (unit-tested): the facts read Caddy's log and the server's
addresses, the operations decide from these answers.

Caddy logs JSON, one object a line. Each time its configuration is loaded it says
``enabling automatic TLS certificate management`` with the domains; each attempt at a
certificate starts with ``obtaining certificate`` and ends with ``certificate obtained
successfully``, or with ``could not get certificate from issuer`` and ``will retry``
(after ``challenge failed`` for each challenge type the ACME server could not validate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

OBTAINING, FAILED, OBTAINED, IDLE = "obtaining", "failed", "obtained", "idle"
# Caddy's messages (certmagic's and acmez's words, Caddy 2.6 and later).
LOADED = "enabling automatic TLS certificate management"
STARTS = ("obtaining certificate", "renewing certificate")
SUCCEEDS = ("certificate obtained successfully", "certificate renewed successfully")
FAILS = ("could not get certificate from issuer", "will retry")
SHOWN = ("challenge failed", "could not get certificate from issuer", "will retry", "job failed")
# Names never in public DNS (the checklist's dns item does not look them up either).
RESERVED_SUFFIXES = (".test", ".example", ".invalid", ".localhost", ".local", ".internal", ".home.arpa")


def server_name(directory: str) -> str:
    """The ACME server, as the operator knows it: its directory URL (caddy_acme_ca), else Let's Encrypt."""
    return directory or "Let's Encrypt"


@dataclass(frozen=True)
class Attempt:
    """Caddy's last attempt at the domain's certificate since its configuration was loaded."""

    state: str  # OBTAINING, FAILED, OBTAINED, or IDLE (no attempt: a certificate it had, or none yet)
    lines: tuple = ()  # the attempt's log entries (dicts), oldest first

    @property
    def shown(self) -> list[dict]:
        """The entries an operator reads: each failed challenge, the issuer's error, the retry."""
        return [entry for entry in self.lines if entry.get("msg") in SHOWN]


def _names(entry: dict, domain: str) -> bool:
    """Whether a log entry is about the domain."""
    if entry.get("identifier") == domain or domain in (entry.get("identifiers") or ()):
        return True
    return domain in (entry.get("domains") or ()) or f"[{domain}]" in str(entry.get("error", "")) \
        or str(entry.get("error", "")).startswith(f"{domain}:")


def last_attempt(entries: list[dict], domain: str) -> Attempt:
    """The state of Caddy's last attempt at ``domain``'s certificate, from its log entries
    (since the container started, oldest first): only what follows the last load of its
    configuration counts (a reload cancels the attempts of the configuration before)."""
    about = [entry for entry in entries if isinstance(entry, dict) and _names(entry, domain)]
    loads = [i for i, entry in enumerate(about) if entry.get("msg") == LOADED]
    if loads:
        about = about[loads[-1] + 1:]
    starts = [i for i, entry in enumerate(about) if entry.get("msg") in STARTS]
    if not starts:
        return Attempt(IDLE)
    attempt = tuple(about[starts[-1]:])
    messages = [entry.get("msg") for entry in attempt]
    if any(message in SUCCEEDS for message in messages):
        return Attempt(OBTAINED, attempt)
    if any(message in FAILS for message in messages) or any(
            entry.get("msg") == "job failed" and "context canceled" not in str(entry.get("error", ""))
            for entry in attempt):
        return Attempt(FAILED, attempt)
    return Attempt(OBTAINING, attempt)


def log_line(entry: dict, limit: int = 320) -> str:
    """One of Caddy's log entries as an operator reads it: its time (UTC), its message and
    the fields that say what happened, in Caddy's own words."""
    when = ""
    if isinstance(entry.get("ts"), (int, float)):
        when = datetime.fromtimestamp(entry["ts"], timezone.utc).strftime("%H:%M:%S") + " "
    message = str(entry.get("msg", ""))
    details = []
    if entry.get("challenge_type"):
        details.append(str(entry["challenge_type"]))
    if entry.get("issuer"):
        details.append(f"issuer {entry['issuer']}")
    if entry.get("retrying_in") is not None:
        details.append(f"in {entry['retrying_in']}s, attempt {entry.get('attempt', '?')}")
    text = f"{when}{message}" + (f" ({', '.join(details)})" if details else "")
    error = str(entry.get("error", ""))
    if entry.get("problem_type") and entry["problem_type"] not in error:
        error = f"{entry['problem_type']}: {error}"
    if error and entry.get("msg") != "will retry":
        text += f": {error}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class Cause:
    """Why an attempt failed, in one phrase, and what the operator does about it."""

    what: str  # "the ACME server could not resolve shop.example.org"
    todo: str  # "point shop.example.org's A record at this server (203.0.113.10)"
    kind: str = "other"


_DNS = re.compile(r"NXDOMAIN|could not resolve|No valid IP addresses|DNS problem|no such host|SERVFAIL|"
                  r"urn:ietf:params:acme:error:dns", re.I)
_CONNECTION = re.compile(r"urn:ietf:params:acme:error:connection|timeout|timed out|deadline exceeded|"
                         r"connection refused|connection reset|no route to host|network is unreachable|"
                         r"Failed to connect", re.I)
_UNAUTHORIZED = re.compile(r"urn:ietf:params:acme:error:(unauthorized|incorrectResponse)|Invalid response from|"
                           r"key authorization|incorrect", re.I)
_TRUST = re.compile(r"x509:|certificate signed by unknown authority|certificate is not trusted|"
                    r"tls: failed to verify", re.I)


@dataclass(frozen=True)
class Context:
    """What the explanation names: the domain, the server's addresses, the ACME server."""

    domain: str
    addresses: tuple = ()  # the server's own addresses
    directory: str = ""  # caddy_acme_ca, "" for Let's Encrypt
    email: str = ""  # caddy_acme_email

    @property
    def acme_server(self) -> str:
        return server_name(self.directory)

    @property
    def here(self) -> str:
        return f"this server ({', '.join(self.addresses)})" if self.addresses else "this server's address"


def _challenge_kind(text: str) -> str | None:
    """What one failed challenge says: the name does not resolve, nothing answered (a
    connection refused, or no answer in time), or something else answered."""
    if _DNS.search(text):
        return "dns"
    if _CONNECTION.search(text):
        return "unreachable"
    if _UNAUTHORIZED.search(text):
        return "elsewhere"
    return None


def cause_of(attempt: Attempt, context: Context) -> Cause:
    """Why the attempt failed (pure; unit-tested): from the challenges' errors when the
    ACME server tried to validate the domain, else from the order's or the account's."""
    domain = context.domain
    challenges = [f"{e.get('problem_type', '')} {e.get('error', '')}" for e in attempt.lines
                  if e.get("msg") == "challenge failed"]
    issuer = " ".join(str(e.get("error", "")) for e in attempt.lines
                      if e.get("msg") in ("could not get certificate from issuer", "job failed"))
    if "rejectedIdentifier" in issuer or "forbidden by policy" in issuer:
        return Cause(f"{context.acme_server} refuses to issue a certificate for {domain} (its policy)",
                     "use a domain that ACME server issues certificates for, or another ACME server "
                     "(caddy_acme_ca), then deploy again", "refused")
    if "rateLimited" in issuer or "too many" in issuer.lower():
        return Cause(f"{context.acme_server} limits the certificates it issues for {domain} (a rate limit)",
                     "wait until the limit resets (the error above says when; Caddy keeps asking on its own, "
                     "less and less often), then deploy again; test against a staging ACME server (caddy_acme_ca) "
                     "rather than deploying again and again", "rate-limited")
    if "invalidContact" in issuer or "unsupportedContact" in issuer:
        return Cause(f"{context.acme_server} refused the account's email address"
                     + (f" (caddy_acme_email = {context.email})" if context.email else ""),
                     "set caddy_acme_email to a working address of yours (or leave it empty), then deploy again",
                     "email")
    if "badNonce" in issuer:
        return Cause(f"{context.acme_server} rejected Caddy's requests (badNonce: its replay protection, again and "
                     "again)", "the ACME server is failing requests: deploy again later, or look at that server if "
                     "it is yours", "rejected")
    kinds = {_challenge_kind(text) for text in challenges}
    if "dns" in kinds:
        return Cause(f"{context.acme_server} could not resolve {domain}",
                     f"point {domain}'s A record at {context.here}; once it resolves there (dig +short {domain}), "
                     "deploy again", "dns")
    if "elsewhere" in kinds:
        return Cause(f"{context.acme_server} reached {domain}, but another server answered its challenge",
                     f"point {domain}'s A record at {context.here} (not at another server, a proxy or a CDN), "
                     "then deploy again", "elsewhere")
    if "unreachable" in kinds:
        return Cause(f"{context.acme_server} could not connect to {domain} on port 80 or 443",
                     "open ports 80 and 443 to the internet (a firewall, a cloud security group) and make sure "
                     f"{domain}'s A record is {context.here}, then deploy again", "unreachable")
    if _TRUST.search(issuer):
        return Cause(f"Caddy does not trust the HTTPS certificate of the ACME server ({context.acme_server})",
                     "set caddy_acme_ca_root to that server's root certificate (PEM), then deploy again", "trust")
    if _DNS.search(issuer) or _CONNECTION.search(issuer):
        return Cause(f"Caddy could not reach the ACME server ({context.acme_server})",
                     "check caddy_acme_ca, and that this server reaches it (DNS, outgoing HTTPS), then deploy again",
                     "acme-server")
    return Cause(f"Caddy could not get one from {context.acme_server}",
                 "see Caddy's lines above; once the cause is fixed, deploy again")


def explanation(attempt: Attempt, context: Context, container: str, app_up: str) -> tuple[list[str], str]:
    """What the deploy says when the site has no certificate (pure; unit-tested): its
    lines, and the one line it ends with."""
    cause = cause_of(attempt, context)
    lines = [f"No certificate for {context.domain}: {cause.what}."]
    shown = attempt.shown[-6:]
    if shown:
        lines.append(f"Caddy's last lines about it (docker logs {container}):")
        lines += [f"  | {log_line(entry)}" for entry in shown]
    lines.append(f"The app itself is up: {app_up}.")
    lines.append(f"To do: {cause.todo}. Caddy keeps asking on its own meanwhile.")
    return lines, f"no certificate for {context.domain}: {cause.what}; {cause.todo}"


def reserved(domain: str) -> bool:
    return domain.endswith(RESERVED_SUFFIXES)


def dns_warning(domain: str, resolved: list[str], addresses: list[str], directory: str) -> list[str]:
    """The preflight's warning when the domain does not resolve to an address of the
    server (asked from the server), with both, and what it means for the certificate
    (pure; unit-tested); [] when it does."""
    if set(resolved) & set(addresses):
        return []
    here = ", ".join(addresses) or "none found"
    acme_server = server_name(directory)
    if resolved:
        found = f"{domain} resolves to {', '.join(resolved)}, not to an address of this server ({here})"
    else:
        found = f"{domain} does not resolve (asked from this server; its addresses: {here})"
    return [
        f"Warning: {found}.",
        f"  The certificate: {acme_server} validates {domain} by connecting to the address its DNS gives, on port 80 "
        f"or 443; until that is this server, Caddy gets no certificate and HTTPS fails (the deploy says so when it "
        f"checks the stack; everything else is deployed). Point {domain}'s A record at this server first, or deploy "
        "now and again once it does. (Right as it is only behind NAT, or a proxy that forwards ports 80 and 443 here.)",
    ]
