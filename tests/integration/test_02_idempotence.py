"""Scenario 2: a second deploy with nothing changed changes nothing and restarts nothing,
and asks the server almost nothing one fact at a time (tasks.snapshot answers the rest
in the one round trip that reads the env file)."""

import re

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


def test_a_run_with_nothing_to_do_asks_its_facts_at_once(deployed, server, testbed):
    deploy(server, testbed.settings())  # the run before records what a run asks
    run = deploy(server, testbed.settings(), "-v")
    asked_alone = re.findall(r"Loaded fact (\S+)", run.output)
    # pyinfra prints a line for each fact it asks on its own; the snapshot's answers print none.
    assert len(asked_alone) <= 8, f"facts asked one round trip each: {asked_alone}"
