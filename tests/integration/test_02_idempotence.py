"""Scenario 2: a second deploy with nothing changed changes nothing and restarts nothing."""

from tests.integration.helpers import deploy, start_times

def test_second_run_reports_zero_changes_and_restarts_nothing(deployed, server, testbed):
    before = start_times(server)
    run = deploy(server, testbed.settings())
    results = run.results()
    assert run.changed_operations() == [], f"operations that changed on the second run: {run.changed_operations()}"
    assert results["totals"]["success"] == 0
    assert results["totals"]["error"] == 0
    assert results["totals"]["no_change"] == len(results["operations"]) > 0
    assert start_times(server) == before
