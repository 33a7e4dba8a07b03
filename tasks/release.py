"""A run's bookkeeping: the deploy lock first, the release's record and the audit line
last (also when the run fails), so that two runs never work on one
server at once and every action leaves one line in the server's audit log."""

from __future__ import annotations

import getpass
import os
import socket

from pyinfra import host, logger, state
from pyinfra.api import StringCommand, deploy
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.state import BaseStateCallback

from tasks import group, snapshot
from tasks.commands import if_installed, program
from tasks.operations.release import Run, lock_released, locked, release_recorded, unlock
from tasks.preflight import Deployment


def operator() -> str:
    """Who runs this: SRQ_HPN_OPERATOR, else user@machine."""
    return os.environ.get("SRQ_HPN_OPERATOR") or f"{getpass.getuser()}@{socket.gethostname()}"


_runs: dict[str, Run] = {}


class _AuditAndUnlockOnFailure(BaseStateCallback):
    """When an operation fails on a host, write that run's audit line and release its lock."""

    @staticmethod
    def operation_host_error(state, host, op_hash, retry_count=0, max_retries=0):
        if retry_count < max_retries:
            return
        what = ", ".join(state.get_op_meta(op_hash).names)
        if group.is_group(state.inventory):
            # One host failed: the whole group's run stops after this operation (pyinfra's own
            # FAIL_PERCENT, at 0 from now: a deploy file's config does not last until its run);
            # every server this run holds is left as it is, its lock released, and the operator
            # told who runs what.
            state.config.FAIL_PERCENT = 0
            first = group.stop(host.name, what)
            group.all_turns_done(host.name)
            if not first:
                return
            for name, run_ in _runs.items():
                other = state.inventory.get_host(name)
                result = f"failed: {what}" if name == host.name else f"stopped: {what} failed on {host.name}"
                _stand_down_and_unlock(state, other, run_, result)
            for line in group.release_words({n: r for n, r in _runs.items() if r.plan is not None}):
                logger.warning(f"Group: {line}")
            return
        run_ = _runs.get(host.name)
        if run_ is not None:
            _stand_down_and_unlock(state, host, run_, f"failed: {what}")


def _stand_down_and_unlock(state, target, run_: Run, result: str) -> None:
    """On ``target``: the standbys of a swap that never came removed (the running version serves
    alone), the run's audit line written and its lock released."""
    if not run_.locked:
        return
    global_arguments, _ = pop_global_arguments(state, target, {})
    connector_arguments = {k: global_arguments[k] for k in CONNECTOR_ARGUMENT_KEYS if k in global_arguments}

    def on_that_host(command: str) -> None:
        target.run_shell_command(StringCommand(command), print_output=False, print_input=False,
                                 **connector_arguments)

    release = run_.plan.release if run_.plan else None
    try:
        on_that_host(if_installed("srq-hpn-rollout", program("srq-hpn-rollout", "--stand-down"), ""))
        unlock(run_, result, release.id if release else None, release.source_revision if release else None,
               on_that_host)
    except Exception:  # noqa: BLE001 - never hide the failure being reported
        pass


_callback = _AuditAndUnlockOnFailure()


@deploy("Take the deploy lock")
def begin(deployment: Deployment, action: str = "deploy", detail: dict | None = None, plan=None) -> Run:
    """Take the server's deploy lock before anything changes; returns the run
    (``detail``: what else its audit line records; ``plan``: what it does, for that line)."""
    if _callback not in state.callback_handlers:
        state.add_callback_handler(_callback)
    settings = deployment.settings
    run_ = Run(action=action, operator=operator(), paths=settings.paths, detail=dict(detail or {}), plan=plan)
    _runs[host.name] = run_
    snapshot.watch(host)
    locked(
        name="Ensure this run holds the deploy lock (no other deploy, rollback or restore at once)"
             + (" on each server of the group, one after the other" if group.is_group(state.inventory) else ""),
        run_=run_,
        release_hint=(plan.release.id or None) if plan else None,
        timeout=settings.lock_timeout,
        break_lock=settings.break_lock,
    )
    return run_


@deploy("Record the release and release the lock")
def finish(run_: Run, deployment: Deployment):
    settings = deployment.settings
    plan = run_.plan
    if plan is None:  # the edge: no release of its own
        lock_released(name="Ensure the audit log has this run's line and the lock is released", run_=run_)
        return
    words = ([f"release {plan.release.id or '(fetched)'} goes live"] if plan.goes_live else []) + \
        [f"remove release {old['release']}" for old, _images in plan.pruned]
    release_recorded(
        name="Ensure the release is recorded, and only the newest releases keep their images"
             + (f" ({'; '.join(words)})" if words else ""),
        paths=settings.paths,
        plan=plan,
        keep=settings.releases_kept,
    )
    lock_released(name="Ensure the audit log has this run's line and the lock is released", run_=run_)


@deploy("Release the lock")
def end(run_: Run):
    lock_released(name="Ensure the audit log has this run's line and the lock is released", run_=run_)
