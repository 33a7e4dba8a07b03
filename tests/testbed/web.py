"""What an operator checks from outside: HTTP and HTTPS through the server's published
ports (TLS verified against Caddy's internal CA, with the stack's host name)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.testbed.base import CADDY_CONTAINER, CADDY_ROOT_CA, DOMAIN, LOOPBACK, TestbedError
from tests.testbed.servers import Server

@dataclass
class HttpResponse:
    status: int
    headers: http.client.HTTPMessage  # case-insensitive: headers["content-type"]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        """One header's value, by case-insensitive name."""
        return self.headers.get(name, default)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _LoopbackHTTPConnection(http.client.HTTPConnection):
    """Talks to `domain` (Host header) but connects to 127.0.0.1:<published port>."""

    def __init__(self, domain: str, loopback_port: int, timeout: float) -> None:
        super().__init__(domain, 80, timeout=timeout)
        self._loopback_port = loopback_port

    def connect(self) -> None:
        self.sock = socket.create_connection((LOOPBACK, self._loopback_port), self.timeout)


class _LoopbackHTTPSConnection(http.client.HTTPSConnection):
    """Talks TLS to `domain` (SNI, Host, certificate hostname check) over 127.0.0.1:<port>."""

    def __init__(self, domain: str, loopback_port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(domain, 443, timeout=timeout, context=context)
        self._loopback_port = loopback_port
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((LOOPBACK, self._loopback_port), self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)


def _request(connection: http.client.HTTPConnection, method: str, path: str,
             headers: dict[str, str] | None, body: bytes | None) -> HttpResponse:
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return HttpResponse(response.status, response.headers, response.read())
    finally:
        connection.close()


def https_get(server: Server, path: str, cafile: str | os.PathLike, domain: str = DOMAIN, *,
              method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
              timeout: float = 15.0) -> HttpResponse:
    """GET https://<domain><path> from the server's published 443, verifying the
    certificate against `cafile` with hostname checking on. Redirects are not followed."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return _request(_LoopbackHTTPSConnection(domain, server.https_port, context, timeout),
                    method, path, headers, body)


def http_get(server: Server, path: str, domain: str = DOMAIN, *, method: str = "GET",
             headers: dict[str, str] | None = None, body: bytes | None = None,
             timeout: float = 15.0) -> HttpResponse:
    """GET http://<domain><path> from the server's published 80. Redirects are not followed."""
    return _request(_LoopbackHTTPConnection(domain, server.http_port, timeout), method, path, headers, body)


def caddy_root_ca(server: Server, dest: str | os.PathLike, container: str = CADDY_CONTAINER) -> Path:
    """Copy Caddy's internal root certificate out of the server (its ``container``) to `dest`."""
    code, output = server.exec(["docker", "exec", container, "cat", CADDY_ROOT_CA], check=False, timeout=60)
    if code != 0 or "BEGIN CERTIFICATE" not in output:
        raise TestbedError(f"could not read Caddy's root certificate from {server.name} (exit {code}):\n{output}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(output[output.index("-----BEGIN CERTIFICATE-----"):])
    return dest
