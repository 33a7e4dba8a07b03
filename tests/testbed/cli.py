"""The real pyinfra CLI, run against the testbed's servers as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tests.testbed.base import PYINFRA_TIMEOUT, REPO_ROOT

def pyinfra_command() -> str:
    """The pyinfra of this checkout's virtualenv (as an operator runs it)."""
    for candidate in (REPO_ROOT / ".venv" / "bin" / "pyinfra", Path(sys.executable).parent / "pyinfra"):
        if candidate.exists():
            return str(candidate)
    return "pyinfra"


@dataclass(frozen=True)
class OutputLine:
    """One line of a run's output, stamped as it arrived."""

    at: float  # seconds since the command was started
    wall: float  # the host's clock (time.time()) when it arrived
    stream: str  # "stdout" or "stderr"
    text: str  # without its newline


class PyinfraRun(subprocess.CompletedProcess):
    """A finished `pyinfra` run: returncode, stdout, stderr, and readers of its output.
    With run_pyinfra(stamped=True) also `lines` (each OutputLine as it arrived) and
    `seconds` (wall time from start to exit) and `started_at` (the host's clock at start);
    otherwise `lines` is empty."""

    lines: list[OutputLine] = []
    seconds: float | None = None
    started_at: float | None = None

    @property
    def output(self) -> str:
        """stdout and stderr together (pyinfra logs to stderr, --json goes to stdout)."""
        return (self.stdout or "") + (self.stderr or "")

    def json(self) -> Any:
        """The document printed by `--json` (on stdout)."""
        text = (self.stdout or "").strip()
        try:
            return json.loads(text)
        except ValueError:
            start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
            if start < 0:
                raise ValueError(f"no JSON on pyinfra's stdout:\n{text[-2000:]}") from None
            return json.loads(text[start:])

    def results(self) -> dict:
        """`--json`'s results of a deploy: {"operations": [...], "totals": {...}, "failed_hosts": [...]}."""
        results = self.json().get("results")
        if results is None:
            raise ValueError("this run has no results (a --dry run, or not a deploy)")
        return results

    def changed_operations(self) -> list[str]:
        """Names of the operations that changed something on some host (needs --json)."""
        return [op["name"] for op in self.results()["operations"] if op["success"]]

    def describe(self, tail: int = 80) -> str:
        return describe_run(self, tail)


def run_pyinfra(
    inventory_data: dict[str, list],
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = PYINFRA_TIMEOUT,
    echo: bool = False,
    cwd: Path = REPO_ROOT,
    stamped: bool = False,
    pyinfra: str | None = None,
) -> PyinfraRun:
    """Run `pyinfra inventory.py *args` from the repository root (or `cwd`), with SRQ_HPN_INVENTORY
    naming a JSON file of `inventory_data` ({"group": [[host, data], ...]}); `pyinfra` is
    that command's path (default: this checkout's virtualenv's).

    stdout/stderr are captured (and, with echo=True, also printed as they come; with
    stamped=True each line is kept with the time it arrived, in `run.lines`)."""
    with tempfile.NamedTemporaryFile("w", prefix="srq-hpn-inventory-", suffix=".json", delete=False) as handle:
        json.dump(inventory_data, handle, indent=2)
        inventory_file = handle.name
    try:
        command = [pyinfra or pyinfra_command(), "inventory.py", *args]
        full_env = {**os.environ, "SRQ_HPN_INVENTORY": inventory_file, **(env or {})}
        if not (echo or stamped):
            done = subprocess.run(
                command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
            )
            return PyinfraRun(done.args, done.returncode, done.stdout, done.stderr)
        return _run_streaming(command, full_env, timeout, cwd, echo)
    finally:
        os.unlink(inventory_file)


def _run_streaming(command: list[str], env: dict[str, str], timeout: float, cwd: Path, echo: bool) -> PyinfraRun:
    """Run `command`, reading stdout and stderr line by line as they come: each line
    is stamped with its arrival time, and with echo also printed."""
    wall, started = time.time(), time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines: list[OutputLine] = []

    def pump(stream: TextIO, name: str, sink: TextIO) -> None:
        for line in stream:
            at = time.monotonic() - started
            lines.append(OutputLine(at, wall + at, name, line.rstrip("\n")))
            if echo:
                sink.write(line)
                sink.flush()

    threads = [threading.Thread(target=pump, args=(process.stdout, "stdout", sys.stdout)),
               threading.Thread(target=pump, args=(process.stderr, "stderr", sys.stderr))]
    for thread in threads:
        thread.start()
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
        for thread in threads:
            thread.join()
    seconds = time.monotonic() - started
    lines.sort(key=lambda line: line.at)
    run = PyinfraRun(command, process.returncode,
                     "".join(f"{line.text}\n" for line in lines if line.stream == "stdout"),
                     "".join(f"{line.text}\n" for line in lines if line.stream == "stderr"))
    run.lines, run.seconds, run.started_at = lines, seconds, wall
    return run


def describe_run(result: subprocess.CompletedProcess, tail: int = 80) -> str:
    """The command, its exit code and the last lines of its output, for assertion messages."""
    def last(text: str) -> str:
        return "\n".join((text or "").splitlines()[-tail:])
    return (f"$ {' '.join(map(str, result.args))}\nexit code {result.returncode}\n"
            f"--- stdout (last {tail} lines) ---\n{last(result.stdout)}\n"
            f"--- stderr (last {tail} lines) ---\n{last(result.stderr)}")
