"""A webhook receiver on the test network, for the monitor's alerts: a container of the
testbed's python-base image that records every POST it gets (path, content type,
body) and answers 200. The servers reach it by its network alias; the tests read
what it got with `docker exec`. Nothing is published, not even on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass

import docker

from tests.testbed import harness
from tests.testbed.base import TestbedError, _labels, _LoopbackContainer
from tests.testbed.servers import _NamedNetwork

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
    name = f"srq-hpn-{suffix}-{testbed.run_id}"
    container = (
        _LoopbackContainer(testbed.images["python-base"], name=name,
                                   labels=_labels(testbed.sandbox, testbed.run_id))
        .with_command(["python3", "-c", SERVER])
        .with_network(_NamedNetwork(testbed.network))
        .with_network_aliases(name)
    )
    container.start()
    receiver = WebhookReceiver(container=container.get_wrapped_container(), alias=name)
    code = 1
    for _ in range(100):  # listening within seconds; a crash shows in its logs
        code = receiver.container.exec_run(
            ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {PORT}), 1)"]).exit_code
        if code == 0:
            break
        receiver.container.reload()
        if receiver.container.status != "running":
            break
        time.sleep(0.1)
    if code != 0:
        logs = receiver.container.logs(tail=30).decode(errors="replace")
        receiver.remove()
        raise TestbedError(f"the webhook receiver {name} did not listen on {PORT}:\n{logs}")
    return receiver
