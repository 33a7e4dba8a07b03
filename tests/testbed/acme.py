"""The testbed's ACME side: Pebble (the ACME test server of the Let's Encrypt project)
on the test network, and a DNS server whose answers for the test domains a scenario
sets, so that a domain "points at" a server as public DNS would make it.

Both run the `pebble` image (tests/testbed/images/pebble). The DNS server answers the
zones it holds (example.org) from its own records only, and forwards every other name
to Docker's DNS (the testbed's aliases, the Debian mirror): servers started with it as
their resolver install packages as before. Pebble asks it for the domains it validates,
reaches the server under test on ports 80 and 443 of the test network, and serves its
directory over HTTPS with a certificate of a CA it makes at start: the deploy trusts
that CA and Pebble's own (regenerated) root through `caddy_acme_ca_root`.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from tests.testbed.base import RUN_ID, TestbedError, _docker, _labels
from tests.testbed.images import ensure_images

# The zone the test domains live in: reserved for documentation (RFC 2606), never a
# real service, and not one of the names the checks refuse to look up (.test, ...).
ZONE = "example.org"
DNS_ALIAS = "dns.test"
HOSTS_DIR = "/etc/testbed-hosts"
ACME_PORT, MANAGEMENT_PORT = 14000, 15000
PEBBLE_TLS_CA = "/etc/pebble/tls/ca.pem"
ISSUED = re.compile(r"Issued certificate serial (\S+) for order (\S+)")


def _ip(container, network: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def _wait(what: str, condition, timeout: float = 30.0, container=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = container.logs(tail=30).decode(errors="replace") if container is not None else ""
            raise TestbedError(f"{what} not within {timeout:.0f}s{':' if logs else ''}\n{logs}")
        time.sleep(0.2)


@dataclass
class TestDns:
    """The test network's DNS server: `point(name, address)` is an A record, set or removed."""

    __test__ = False

    container: Any
    ip: str

    def point(self, name: str, address: str | None) -> None:
        """Make `name` resolve to `address` (None: to nothing, NXDOMAIN), at once."""
        line = f"{address} {name}\n" if address else ""
        self._exec(f"printf '%s' '{line}' > {HOSTS_DIR}/{name} && kill -HUP 1")

    def _exec(self, command: str) -> str:
        result = self.container.exec_run(["sh", "-c", command])
        output = (result.output or b"").decode(errors="replace")
        if result.exit_code != 0:
            raise TestbedError(f"the test DNS server could not run `{command}`: {output}")
        return output

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)


@dataclass
class Pebble:
    """One Pebble on the test network: its directory URL, the roots a deploy must trust,
    and the certificates it issued."""

    alias: str
    container: Any
    ip: str
    options: dict = field(default_factory=dict)

    @property
    def directory(self) -> str:
        return f"https://{self.alias}:{ACME_PORT}/dir"

    def _exec(self, argv: list[str]) -> str:
        result = self.container.exec_run(argv)
        output = (result.output or b"").decode(errors="replace")
        if result.exit_code != 0:
            raise TestbedError(f"{self.alias}: `{' '.join(argv)}` failed: {output}")
        return output

    def tls_ca(self) -> str:
        """The CA of the certificate Pebble's HTTPS listeners present (made at its start)."""
        return self._exec(["cat", PEBBLE_TLS_CA])

    def issuing_root(self) -> str:
        """The root of the certificates Pebble issues (regenerated at each start)."""
        return self._exec(["curl", "-sS", "--fail", "--cacert", PEBBLE_TLS_CA,
                           f"https://{self.alias}:{MANAGEMENT_PORT}/roots/0"])

    def write_roots(self, path: Path) -> Path:
        """A PEM file with both roots, as `caddy_acme_ca_root` takes it: the ACME server's
        HTTPS CA and the root of what it issues (a company's own ACME CA is often one root)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.tls_ca().strip() + "\n" + self.issuing_root().strip() + "\n")
        return path

    def write_issuing_root(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.issuing_root().strip() + "\n")
        return path

    def issued(self) -> list[str]:
        """The serial numbers of the certificates it issued, oldest first (from its log)."""
        logs = self.container.logs().decode(errors="replace")
        return [match.group(1) for match in ISSUED.finditer(logs)]

    def logs(self, tail: int = 40) -> str:
        return self.container.logs(tail=tail).decode(errors="replace")

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)


def _start(command: list[str], name: str, network: str, alias: str, environment: dict, sandbox: bool, run_id: str):
    """A container of the pebble image on `network` only, under `alias`; no port published."""
    client = _docker()
    image = ensure_images(["pebble"], log=None)["pebble"]
    container = client.containers.create(
        image, command, name=name, detach=True, environment=environment, network=network,
        labels={"org.testcontainers": "true", **_labels(sandbox, run_id)},
        networking_config={network: client.api.create_endpoint_config(aliases=[alias])},
    )
    try:
        container.start()
    except docker.errors.APIError:
        container.remove(force=True)
        raise
    return container


def start_dns(network: str, *, sandbox: bool = False, run_id: str = RUN_ID, name: str | None = None) -> TestDns:
    """The DNS server of the test network (alias dns.test), holding the zone example.org."""
    container = _start(["dns"], name or f"srq-hpn-dns-{run_id}", network, DNS_ALIAS, {"DNS_ZONES": ZONE},
                       sandbox, run_id)
    dns = TestDns(container, _ip(container, network))
    _wait("the test DNS server", lambda: b"started" in container.logs(), container=container)
    return dns


def start_pebble(network: str, alias: str, dns: TestDns, *, sandbox: bool = False, run_id: str = RUN_ID,
                 blocked: tuple[str, ...] = (), validity: int | None = None, nonce_reject: int = 0,
                 http_port: int = 80, tls_port: int = 443) -> Pebble:
    """A Pebble on the test network under `alias`, validating on `http_port` and `tls_port`
    of the addresses the test DNS gives: `blocked` domains refused by policy, `validity`
    the issued certificates' lifetime (seconds), `nonce_reject` the share (%) of good
    nonces it rejects as bad (Pebble's PEBBLE_WFE_NONCEREJECT)."""
    environment = {
        "ACME_DNS": f"{dns.ip}:53",
        "ACME_NAMES": alias,
        "ACME_HTTP_PORT": str(http_port),
        "ACME_TLS_PORT": str(tls_port),
        "ACME_BLOCKED": ",".join(blocked),
        "PEBBLE_VA_NOSLEEP": "1",  # validate at once (Pebble sleeps up to 5 s otherwise)
        "PEBBLE_WFE_NONCEREJECT": str(nonce_reject),  # Pebble rejects 5 % by default
    }
    if validity:
        environment["ACME_VALIDITY"] = str(validity)
    container = _start(["pebble"], f"srq-hpn-pebble-{alias.split('.')[0]}-{run_id}", network, alias, environment,
                       sandbox, run_id)
    pebble = Pebble(alias, container, _ip(container, network), {"blocked": blocked, "validity": validity,
                                                               "nonce_reject": nonce_reject})
    _wait(f"Pebble ({alias})", lambda: b"ACME directory available" in container.logs(), container=container)
    return pebble
