"""A log collector on the test network, for the log shipping scenario: a container of
the testbed's journal-collector image (Debian's systemd-journal-remote, listening for
plain-HTTP uploads on 19532) whose journal files the tests read with `journalctl
--directory` through `docker exec`. The servers reach it by its network alias; nothing
is published, not even on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import docker

from tests.testbed import harness
from tests.testbed.base import TestbedError, _labels, _LoopbackContainer
from tests.testbed.servers import _NamedNetwork

PORT = 19532
JOURNAL_DIR = "/var/log/journal/remote"


@dataclass
class JournalCollector:
    container: object  # docker.models.containers.Container
    alias: str

    @property
    def url(self) -> str:
        """The URL the servers upload to (by the collector's network alias)."""
        return f"http://{self.alias}:{PORT}"

    def lines(self, *matches: str) -> list[str]:
        """The messages received so far (journalctl matches such as SYSLOG_IDENTIFIER=srq-hpn-api)."""
        result = self.container.exec_run(["journalctl", "--directory", JOURNAL_DIR, "--no-pager", "-q", "-o", "cat",
                                          *matches])
        return (result.output or b"").decode(errors="replace").splitlines()

    def logs(self, tail: int = 30) -> str:
        return self.container.logs(tail=tail).decode(errors="replace")

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)


def start_journal_collector(testbed: harness.Testbed, suffix: str = "collector") -> JournalCollector:
    """Start a collector on the testbed's network (labelled like every testbed container,
    so a sweep removes what a crashed run left)."""
    name = f"srq-hpn-{suffix}-{testbed.run_id}"
    container = (
        _LoopbackContainer(testbed.images["journal-collector"], name=name,
                           labels=_labels(testbed.sandbox, testbed.run_id))
        .with_network(_NamedNetwork(testbed.network))
        .with_network_aliases(name)
    )
    container.start()
    collector = JournalCollector(container=container.get_wrapped_container(), alias=name)
    listening = False
    for _ in range(100):  # listening within a second; a crash shows in its logs
        probe = collector.container.exec_run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PORT}"])
        listening = probe.exit_code == 0
        if listening:
            break
        collector.container.reload()
        if collector.container.status != "running":
            break
        time.sleep(0.1)
    if not listening:
        logs = collector.logs()
        collector.remove()
        raise TestbedError(f"the journal collector {name} did not listen on {PORT}:\n{logs}")
    return collector
