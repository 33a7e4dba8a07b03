"""A run's bookkeeping: the deploy lock first, the release's images, its record and
the audit line last (also when the run fails), so that two runs never work on one
server at once and every action leaves one line in the server's audit log."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass

from pyinfra import host, state
from pyinfra.api import StringCommand, deploy
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.state import BaseStateCallback

from tasks import facts, snapshot
from tasks.operations.release import Run, images_built, images_started, lock_released, locked, release_recorded, unlock
from tasks.preflight import Deployment
from tasks.runtime import learnt, learnt_on


def operator() -> str:
    """Who runs this: SRQ_HPN_OPERATOR, else user@machine."""
    return os.environ.get("SRQ_HPN_OPERATOR") or f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class ReleaseRef:
    """The release being deployed: known while planning for an upload, read from the
    checkout once it is fetched in git mode."""

    app_dir: str
    revision: str | None = None

    def id(self) -> str:
        """The release id (image tag); records the full source revision for later steps."""
        revision = self.revision or host.get_fact(facts.CheckoutHead, app_dir=self.app_dir)
        learnt().source_revision = revision
        return revision[:12] if revision else "unknown"


_runs: dict[str, Run] = {}


class _AuditAndUnlockOnFailure(BaseStateCallback):
    """When an operation fails on a host, write that run's audit line and release its lock."""

    @staticmethod
    def operation_host_error(state, host, op_hash, retry_count=0, max_retries=0):
        run_ = _runs.get(host.name)
        if retry_count < max_retries or run_ is None or not run_.locked:
            return
        global_arguments, _ = pop_global_arguments(state, host, {})
        connector_arguments = {k: global_arguments[k] for k in CONNECTOR_ARGUMENT_KEYS if k in global_arguments}

        def on_that_host(command: str) -> None:
            host.run_shell_command(StringCommand(command), print_output=False, print_input=False,
                                   **connector_arguments)

        found = learnt_on(host.name)
        try:
            unlock(run_, f"failed: {', '.join(state.get_op_meta(op_hash).names)}",
                   found.release if found else None, found.source_revision if found else None, on_that_host)
        except Exception:  # noqa: BLE001 - never hide the failure being reported
            pass


_callback = _AuditAndUnlockOnFailure()


@deploy("Take the deploy lock")
def begin(deployment: Deployment, action: str = "deploy", detail: dict | None = None) -> Run:
    """Take the server's deploy lock before anything changes; returns the run
    (``detail``: what else its audit line records)."""
    if _callback not in state.callback_handlers:
        state.add_callback_handler(_callback)
    settings = deployment.settings
    run_ = Run(action=action, operator=operator(), paths=settings.paths, detail=dict(detail or {}))
    _runs[host.name] = run_
    snapshot.watch(host)
    locked(
        name="Ensure this run holds the deploy lock (no other deploy, rollback or restore at once)",
        run_=run_,
        release_hint=deployment.upload.revision if deployment.upload else None,
        timeout=settings.lock_timeout,
        break_lock=settings.break_lock,
    )
    return run_


@deploy("Prepare the release's images")
def prepare_images(settings):
    images_started(
        name="Ensure the release's images are being built and the missing ones pulled (in the background)",
        paths=settings.paths,
    )


@deploy("Build the release's images")
def build(settings):
    images_built(
        name="Ensure the images of the services the app builds exist for this release",
        paths=settings.paths,
    )


@deploy("Record the release and release the lock")
def finish(run_: Run, deployment: Deployment):
    settings = deployment.settings
    upload = deployment.upload
    release_recorded(
        name="Ensure the release is recorded, and only the newest releases keep their images",
        paths=settings.paths,
        source=settings.app_source,
        commit=upload.commit if upload else None,
        keep=settings.releases_kept,
    )
    lock_released(name="Ensure the audit log has this run's line and the lock is released", run_=run_)


@deploy("Release the lock")
def end(run_: Run):
    lock_released(name="Ensure the audit log has this run's line and the lock is released", run_=run_)
