"""The real pyinfra CLI, run against the testbed's servers as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, TextIO

from tests.testbed.base import PYINFRA_TIMEOUT, REPO_ROOT

def pyinfra_command() -> str:
    """The pyinfra of this checkout's virtualenv (as an operator runs it)."""
    for candidate in (REPO_ROOT / ".venv" / "bin" / "pyinfra", Path(sys.executable).parent / "pyinfra"):
        if candidate.exists():
            return str(candidate)
    return "pyinfra"


class PyinfraRun(subprocess.CompletedProcess):
    """A finished `pyinfra` run: returncode, stdout, stderr, and readers of its output."""

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
) -> PyinfraRun:
    """Run `pyinfra inventory.py *args` from the repository root (or `cwd`), with SRQ_HPN_INVENTORY
    naming a JSON file of `inventory_data` ({"group": [[host, data], ...]}).

    stdout/stderr are captured (and, with echo=True, also printed as they come)."""
    with tempfile.NamedTemporaryFile("w", prefix="srq-hpn-inventory-", suffix=".json", delete=False) as handle:
        json.dump(inventory_data, handle, indent=2)
        inventory_file = handle.name
    try:
        command = [pyinfra_command(), "inventory.py", *args]
        full_env = {**os.environ, "SRQ_HPN_INVENTORY": inventory_file, **(env or {})}
        if not echo:
            done = subprocess.run(
                command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
            )
        else:
            done = _run_echoing(command, full_env, timeout, cwd)
        return PyinfraRun(done.args, done.returncode, done.stdout, done.stderr)
    finally:
        os.unlink(inventory_file)


def _run_echoing(command: list[str], env: dict[str, str], timeout: float, cwd: Path) -> subprocess.CompletedProcess:
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    chunks: dict[str, list[str]] = {"out": [], "err": []}

    def pump(stream: TextIO, key: str, sink: TextIO) -> None:
        for line in stream:
            chunks[key].append(line)
            sink.write(line)
            sink.flush()

    threads = [threading.Thread(target=pump, args=(process.stdout, "out", sys.stdout)),
               threading.Thread(target=pump, args=(process.stderr, "err", sys.stderr))]
    for thread in threads:
        thread.start()
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
        for thread in threads:
            thread.join()
    return subprocess.CompletedProcess(command, process.returncode, "".join(chunks["out"]), "".join(chunks["err"]))


def describe_run(result: subprocess.CompletedProcess, tail: int = 80) -> str:
    """The command, its exit code and the last lines of its output, for assertion messages."""
    def last(text: str) -> str:
        return "\n".join((text or "").splitlines()[-tail:])
    return (f"$ {' '.join(map(str, result.args))}\nexit code {result.returncode}\n"
            f"--- stdout (last {tail} lines) ---\n{last(result.stdout)}\n"
            f"--- stderr (last {tail} lines) ---\n{last(result.stderr)}")
