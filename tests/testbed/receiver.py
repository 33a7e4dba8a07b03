"""A webhook receiver on the test network, for the monitor's alerts: a container of the
testbed's python-base image that records every POST it gets (path, content type,
body) and answers 200. The servers reach it by its network alias; the tests read
what it got with `docker exec`. Nothing is published, not even on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

import docker

from tests.testbed import harness
from tests.testbed.servers import start_listener

PORT = 8080
LOG = "/tmp/received.jsonl"
SERVER = f"""
import http.server, json

class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        record = {{"path": self.path, "content_type": self.headers.get("content-type"),
                   "body": body.decode(errors="replace")}}
        with open({LOG!r}, "a") as log:
            log.write(json.dumps(record) + "\\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

open({LOG!r}, "a").close()
http.server.ThreadingHTTPServer(("0.0.0.0", {PORT}), Receiver).serve_forever()
"""


@dataclass
class WebhookReceiver:
    container: object  # docker.models.containers.Container
    alias: str

    def url(self, path: str) -> str:
        """The URL the servers POST to (by the receiver's network alias)."""
        return f"http://{self.alias}:{PORT}{path}"

    def requests(self) -> list[dict]:
        """Every request received so far, oldest first: {"path", "content_type", "body", "json"}."""
        result = self.container.exec_run(["cat", LOG])
        requests = []
        for line in (result.output or b"").decode(errors="replace").splitlines():
            record = json.loads(line)
            with contextlib.suppress(ValueError):
                record["json"] = json.loads(record["body"])
            requests.append(record)
        return requests

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)


def start_webhook_receiver(testbed: harness.Testbed, suffix: str = "hooks") -> WebhookReceiver:
    """Start a receiver on the testbed's network (labelled like every testbed container,
    so a sweep removes what a crashed run left)."""
    container, name = start_listener(
        testbed, testbed.images["python-base"], suffix, PORT,
        ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {PORT}), 1)"], "the webhook receiver",
        command=["python3", "-c", SERVER])
    return WebhookReceiver(container=container, alias=name)
