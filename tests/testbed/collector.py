"""A log collector on the test network, for the log shipping scenario: a container of
the testbed's journal-collector image (Debian's systemd-journal-remote, listening for
plain-HTTP uploads on 19532) whose journal files the tests read with `journalctl
--directory` through `docker exec`. The servers reach it by its network alias; nothing
is published, not even on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import docker

from tests.testbed import harness
from tests.testbed.servers import start_listener

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
    container, name = start_listener(testbed, testbed.images["journal-collector"], suffix, PORT,
                                     ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PORT}"], "the journal collector")
    return JournalCollector(container=container, alias=name)
