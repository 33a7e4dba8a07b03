"""Scenario 51: the operator's install, exactly as the README's "Running it against your
server" says (a virtual environment with `pip install -e .`, no test extras), deploys.

The tests themselves run from a virtual environment with the test extras, which bring
packages of their own: a module the deploy imports but does not declare would go
unnoticed there. Here the README's own command builds a fresh environment in a copy of
this repository, and that environment's `pyinfra` deploys the shared server."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.integration.helpers import deploy
from tests.testbed import harness

IGNORED = shutil.ignore_patterns(".venv", ".git", ".sandbox", "__pycache__", "*.egg-info", ".pytest_cache")


def readme_install_command() -> str:
    """The install line of the README's section for a real server."""
    text = (harness.REPO_ROOT / "README.md").read_text()
    section = text.split("## Running it against your server", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if "python3 -m venv" in line and "pip install" in line]
    assert lines, "the README's section for a real server has no install command"
    return lines[0]


def test_the_readme_install_deploys(deployed, server, testbed, tmp_path):
    command = readme_install_command()
    assert re.fullmatch(r"python3 -m venv \.venv && \.venv/bin/pip install -e \.", command), command
    copy = tmp_path / "srq-hpn-deploy"
    shutil.copytree(harness.REPO_ROOT, copy, ignore=IGNORED)
    done = subprocess.run(["bash", "-c", command], cwd=copy, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    extras = subprocess.run([str(copy / ".venv/bin/python"), "-c", "import pytest"], capture_output=True)
    assert extras.returncode != 0, "the operator's environment has the test extras: it proves nothing"

    run = harness.run_pyinfra(server.inventory(**testbed.settings()), "deploy.py", "-y", "--json",
                              cwd=copy, pyinfra=str(copy / ".venv/bin/pyinfra"))

    assert run.returncode == 0, run.describe()
    assert "Traceback" not in run.output and "ModuleNotFoundError" not in run.output
    assert run.changed_operations() == []  # the shared server is deployed already: a true second run
    # And the checkout's own environment agrees with it.
    assert deploy(server, testbed.settings()).changed_operations() == []
