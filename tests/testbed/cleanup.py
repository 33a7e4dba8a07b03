"""Removing what test runs created, by label (leftovers of crashed runs included)."""

from __future__ import annotations

import contextlib
import os
import socket

import docker

from tests.testbed.base import HOST_LABEL, PID_LABEL, RUN_LABEL, TEST_LABEL, _docker

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(run_id: str | None = None, *, stale_only: bool = False, label: str = TEST_LABEL) -> list[str]:
    """Remove the containers, networks and volumes labelled `srq-hpn-testbed=1`.

    run_id: only those of that test run. stale_only: only those whose creating
    process on this machine is gone (leftovers of crashed runs; a run going on in
    parallel keeps its own). The sandbox (label srq-hpn-sandbox=1) is never touched
    unless label=SANDBOX_LABEL. Returns what was removed."""
    try:
        client = _docker()
    except docker.errors.DockerException:
        return []
    filters = {"label": [f"{label}=1"] + ([f"{RUN_LABEL}={run_id}"] if run_id else [])}
    me = socket.gethostname()

    def doomed(labels: dict[str, str] | None) -> bool:
        if not stale_only:
            return True
        labels = labels or {}
        if labels.get(HOST_LABEL) not in (None, me):
            return False
        pid = labels.get(PID_LABEL)
        return not (pid and pid.isdigit() and _pid_alive(int(pid)))

    removed: list[str] = []
    for container in client.containers.list(all=True, filters=filters):
        if doomed(container.labels):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True, v=True)
                removed.append(f"container {container.name}")
    for network in client.networks.list(filters=filters):
        if doomed(network.attrs.get("Labels")):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()
                removed.append(f"network {network.name}")
    for volume in client.volumes.list(filters=filters):
        if doomed(volume.attrs.get("Labels")):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
    return removed
