"""A steady request loop through Caddy, counting what a visitor would see.

    with RequestLoop(server, cafile, paths=("/api/health", "/"), rate=30) as loop:
        ...  # deploy an update
    loop.sent, loop.failed, loop.longest_gap, loop.errors

Requests go to the server's HTTPS port published on 127.0.0.1 (TLS verified against
Caddy's CA, SNI and Host the stack's domain), one keep-alive connection that is
opened again after an error, as a browser would. A request fails on a connection
error, a timeout, or any status other than 200. The longest gap is the longest
time between two successful answers.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections import Counter
from pathlib import Path

from tests.testbed.harness import DOMAIN, LOOPBACK, Server


class _Connection(http.client.HTTPSConnection):
    def __init__(self, port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(DOMAIN, 443, timeout=timeout, context=context)
        self._port = port
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((LOOPBACK, self._port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=DOMAIN)


class RequestLoop:
    """Requests at a steady rate in a background thread, until stopped."""

    def __init__(self, server: Server, cafile: str | Path, paths=("/api/health",), rate: float = 30.0,
                 timeout: float = 15.0) -> None:
        self.port = server.https_port
        self.context = ssl.create_default_context(cafile=str(cafile))
        self.paths = list(paths)
        self.interval = 1.0 / rate
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self.errors: Counter = Counter()
        self.longest_gap = 0.0
        self.failed_at: list[float] = []  # when each failed request ended (time.time(): comparable with logs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = None
        last_ok = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            path = self.paths[self.sent % len(self.paths)]
            try:
                if connection is None:
                    connection = _Connection(self.port, self.context, self.timeout)
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
                if not ok:
                    self.errors[f"HTTP {response.status}"] += 1
            except (OSError, http.client.HTTPException) as error:
                ok = False
                self.errors[type(error).__name__] += 1
                if connection is not None:
                    connection.close()
                connection = None
            self.sent += 1
            now = time.monotonic()
            if ok:
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
            else:
                self.failed += 1
                self.failed_at.append(time.time())
            self._stop.wait(max(0.0, self.interval - (now - started)))
        if connection is not None:
            connection.close()

    def __enter__(self) -> "RequestLoop":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        errors = ", ".join(f"{kind}: {count}" for kind, count in self.errors.most_common()) or "none"
        return f"sent {self.sent}, failed {self.failed}, longest gap {self.longest_gap:.2f}s (errors: {errors})"
