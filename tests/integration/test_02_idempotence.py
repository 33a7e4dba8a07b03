"""Scenario 2: a second deploy with nothing changed changes nothing and restarts nothing."""

import pytest

from tests.integration.helpers import containers
from tests.testbed import harness

pytestmark = pytest.mark.integration


def test_second_run_reports_zero_changes_and_restarts_nothing(deployed, server, testbed):
    before = containers(server)
    run = harness.run_pyinfra(server.inventory(**testbed.settings()), "deploy.py", "-y", "--json")
    assert run.returncode == 0, run.stderr[-4000:]
    results = run.results()
    assert run.changed_operations() == [], f"operations that changed on the second run: {run.changed_operations()}"
    assert results["totals"]["success"] == 0
    assert results["totals"]["error"] == 0
    assert results["totals"]["no_change"] == len(results["operations"]) > 0
    after = containers(server)
    assert {n: c["started_at"] for n, c in after.items()} == {n: c["started_at"] for n, c in before.items()}
