"""Facts about the site's certificate: what the server answers HTTPS with, what Caddy's
log says about getting one, and where the domain points (tasks.acme reads the answers)."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from tasks.commands import json_lines


class ServedCertificate(FactBase):
    """
    Returns the certificate the server answers HTTPS with for a domain on 127.0.0.1:443
    (as Caddy serves it), unjudged; ``{"served": False, "error": "..."}`` when there is none.

    .. code:: python

        {"served": True, "issuer": "Pebble Intermediate CA 14c8bd", "serial": "4E75DD0C2A00FFF9",
         "not_after": "Feb 27 21:26:33 2027 GMT"}
    """

    requires_command = "openssl"
    default = dict

    def command(self, domain):
        d = shlex.quote(domain)
        return (
            f"out=$(timeout 10 openssl s_client -connect 127.0.0.1:443 -servername {d} </dev/null 2>&1); "
            "printf '%s\\n' \"$out\" | openssl x509 -noout -issuer -serial -enddate -nameopt oneline 2>/dev/null; "
            "printf '%s\\n' \"$out\" | grep -m1 -iE 'alert|errno|refused|error' | sed 's/^/error=/' || true"
        )

    def process(self, output):
        values = {}
        for line in output:
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), value.strip())
        issuer = values.get("issuer", "")
        if "CN = " in issuer:
            issuer = issuer.split("CN = ", 1)[1].split(",")[0].strip()
        if "notAfter" not in values:
            return {"served": False, "error": values.get("error", "no TLS answer")}
        return {"served": True, "issuer": issuer, "serial": values.get("serial", ""), "not_after": values["notAfter"]}


class DomainAddresses(FactBase):
    """
    Returns the addresses a domain resolves to, asked from the server (as the ACME server
    asks public DNS), and the server's own addresses (its interfaces', Docker's aside).

    .. code:: python

        {"resolved": ["203.0.113.10"], "server": ["203.0.113.10", "2001:db8::10"]}
    """

    def command(self, domain):
        d = shlex.quote(domain)
        return (
            f"timeout 10 getent ahosts {d} 2>/dev/null | awk '{{print \"resolved \" $1}}' | sort -u; "
            "{ ip -o addr show scope global 2>/dev/null || true; } | "
            "awk '$2 !~ /^(docker|br-|veth)/ {split($4, a, \"/\"); print \"server \" a[1]}' | sort -u"
        )

    def process(self, output):
        found = {"resolved": [], "server": []}
        for line in output:
            kind, _, address = line.partition(" ")
            if kind in found and address.strip():
                found[kind].append(address.strip())
        return found


class CaddyAcmeLog(FactBase):
    """
    Returns what Caddy logged about a domain since its container started: its JSON log
    entries that name the domain, oldest first (tasks.acme.last_attempt reads them).
    Asked live only, on the way to an explanation.

    .. code:: python

        [{"ts": 1795987467.42, "level": "error", "logger": "tls.obtain",
          "msg": "could not get certificate from issuer", "identifier": "example.com", "error": "..."}]
    """

    snapshot = False
    requires_command = "docker"
    default = list

    def command(self, container, domain, lines=400):
        c = shlex.quote(container)
        return (
            f"since=$(docker inspect --format '{{{{.State.StartedAt}}}}' {c} 2>/dev/null) || exit 0; "
            f"docker logs --since \"$since\" {c} 2>&1 | grep -F -e {shlex.quote(domain)} | tail -n {int(lines)}"
        )

    def process(self, output):
        return json_lines(output)
