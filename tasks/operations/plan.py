"""The plan's one operation: on a server that could not tell everything before the run
(no Docker yet; a git branch not readable there yet), the rest of the plan is resolved
once the run has installed what it needs and put the release's files in place."""

from __future__ import annotations

from dataclasses import fields

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import PyinfraError

from tasks.plan import Plan


@operation(is_idempotent=False)
def settled(plan: Plan, resolve):
    """
    Ensure the plan is whole: on a server that could not tell before the run what
    Compose makes of the release (a first deploy), resolve it now, the same way, and
    say it; the later operations then decide from it. Nothing when the plan was whole.

    + plan: this run's plan (tasks.plan.Plan), completed in place
    + resolve: a function returning the plan resolved now (tasks.resolve.resolve)
    """
    if plan.known:
        host.noop("the plan was resolved before the run")
        return

    def settle(state, host):  # noqa: ARG001 - pyinfra passes both, by these names
        try:
            whole = resolve()
        except PyinfraError as error:  # the release cannot be deployed: said, nothing more changes
            for line in str(error).splitlines():
                host.log_styled(line, fg="red", log_func=logger.error)
            return False
        for item in fields(Plan):
            setattr(plan, item.name, getattr(whole, item.name))
        for line in plan.steps():
            host.log(f"Plan: {line}")
        return True

    yield FunctionCommand(settle, (), {})


def later(why: str):
    """The commands of an operation that the plan could not decide before the run (a first
    deploy): a change, and at that point of the run the plan is whole (tasks.operations.plan)."""
    host.log(f"Decided during the run: {why}")

    def undecided(state, host):  # noqa: ARG001 - pyinfra passes both, by these names
        raise RuntimeError("the plan was not resolved before this operation ran")

    yield FunctionCommand(undecided, (), {})

