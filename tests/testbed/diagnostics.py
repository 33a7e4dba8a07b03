"""What explains a failure on a server, for a test report."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tests.testbed.servers import Server

def dump_diagnostics(server: Server, out: TextIO | None = None, tail: int = 50) -> None:
    """Print what explains a failure on `server`: whether its container crashed,
    `docker ps -a` inside it, the last lines of each srq-hpn-* container, failed units."""
    out = out or sys.stdout
    status = server.status()
    print(f"\n===== diagnostics of {server.name} (container {status}) =====", file=out)
    if status != "running":
        print(f"the server container is not running: {status}; its last output:", file=out)
        with contextlib.suppress(Exception):
            print(server.container.logs(tail=tail).decode(errors="replace"), file=out)
        return
    _code, output = server.exec("docker ps -a 2>&1 || echo '(no docker engine on the server yet)'",
                                check=False, timeout=60)
    print(f"--- docker ps -a (inside the server) ---\n{output}", file=out)
    _code, names = server.exec("docker ps -a --format '{{.Names}}' 2>/dev/null | grep '^srq-hpn' || true",
                               check=False, timeout=60)
    for name in names.split():
        _code, logs = server.exec(["docker", "logs", "--tail", str(tail), name], check=False, timeout=60)
        print(f"--- last {tail} log lines of {name} ---\n{logs}", file=out)
    print(f"--- systemctl --failed ---\n{server.failed_units() or '(no failed units)'}", file=out)
    out.flush()
