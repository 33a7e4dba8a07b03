"""The testbed's names and its access to the host's Docker engine: labels, the registry,
the server containers' run options, and containers that publish on 127.0.0.1 only.

Everything created here carries the labels `org.testcontainers=true` and either
`srq-hpn-testbed=1` (test runs; cleanup.sweep() removes those) or `srq-hpn-sandbox=1`
(the long-lived sandbox, never swept by the tests). Every port is published on
127.0.0.1 only; no traffic leaves this machine except what the servers' own apt does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

# testcontainers' reaper (Ryuk) image cannot be pulled here: clean up by label instead.
# This must be set before testcontainers reads its configuration.
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"

import docker  # noqa: E402  (after the environment above)
from testcontainers.core.config import testcontainers_config  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402

from tasks import layout  # noqa: E402

testcontainers_config.ryuk_disabled = True

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"

# Labels. Test-run objects and sandbox objects are told apart so that a test run's
# sweep never removes the sandbox an operator is using.
TEST_LABEL = "srq-hpn-testbed"
SANDBOX_LABEL = "srq-hpn-sandbox"
RUN_LABEL = "srq-hpn-testbed.run"  # which test run created it (its id)
PID_LABEL = "srq-hpn-testbed.pid"  # the creating process, to find leftovers of dead runs
HOST_LABEL = "srq-hpn-testbed.host"

RUN_ID = uuid.uuid4().hex[:8]

# The registry as the servers see it: their Docker uses it as its mirror of Docker Hub
# (daemon.json registry-mirrors), so the apps' own image names (postgres:16, caddy:2,
# python:3.12-slim, node:20-slim) resolve to the stand-ins pushed under those names.
REGISTRY_ALIAS = "registry.test"
REGISTRY_PORT = 5000
REGISTRY_HOST = f"{REGISTRY_ALIAS}:{REGISTRY_PORT}"
REGISTRY_MIRROR = f"http://{REGISTRY_HOST}"
STAND_INS = {  # testbed image name -> the Docker Hub repository:tag it stands in for
    "postgres": "library/postgres:16",
    "caddy": "library/caddy:2",
    "python-base": "library/python:3.12-slim",
    "node-base": "library/node:20-slim",
}

DOMAIN = "srq-hpn.test"
# The two app repositories the scenarios deploy (see tests/apps/variant-app/README.md).
SAMPLE_APP = REPO_ROOT / "examples" / "srq-hpn-app"
VARIANT_APP = REPO_ROOT / "tests" / "apps" / "variant-app"
CADDY_CONTAINER = layout.CONTAINERS[layout.CADDY]
CADDY_ROOT_CA = layout.CADDY_ROOT_CA

# How a server container must run for systemd and an inner Docker engine to work
# (see /work/shared/TESTBED_NOTES.md): every capability except those this kernel
# refuses (SYS_RESOURCE, PERFMON, BPF, CHECKPOINT_RESTORE), instead of --privileged.
SERVER_CAPABILITIES = [
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN", "DAC_OVERRIDE",
    "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN",
    "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO",
    "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
]
# The CLI's `--security-opt systempaths=unconfined` is no daemon option: the CLI turns it
# into empty MaskedPaths/ReadonlyPaths (see _LoopbackContainer.with_system_paths_unconfined).
SERVER_SECURITY_OPTS = ["seccomp=unconfined", "apparmor=unconfined"]
SERVER_STOP_SIGNAL = "SIGRTMIN+3"
SERVER_PORTS = {"ssh": 22, "http": 80, "https": 443}
SERVER_READY_TIMEOUT = 120.0
PYINFRA_TIMEOUT = 45 * 60.0


class TestbedError(RuntimeError):
    """The testbed itself could not be brought up; the message says what was seen."""

    __test__ = False  # not a pytest test class


def _docker() -> docker.DockerClient:
    return docker.from_env(timeout=300)


def docker_available() -> tuple[bool, str]:
    """(True, version) if a Docker engine answers, else (False, why not)."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, text=True, timeout=30,
        )
    except FileNotFoundError:
        return False, "no `docker` command on PATH"
    except subprocess.TimeoutExpired:
        return False, "`docker info` did not answer within 30 s"
    if result.returncode != 0:
        return False, f"`docker info` failed: {(result.stderr or result.stdout).strip()[-300:]}"
    return True, result.stdout.strip()


def _labels(sandbox: bool, run_id: str = RUN_ID) -> dict[str, str]:
    """Our labels (testcontainers adds org.testcontainers=true to what it creates)."""
    if sandbox:
        return {SANDBOX_LABEL: "1"}
    return {TEST_LABEL: "1", RUN_LABEL: run_id, PID_LABEL: str(os.getpid()), HOST_LABEL: socket.gethostname()}


def _all_labels(sandbox: bool, run_id: str = RUN_ID) -> dict[str, str]:
    return {"org.testcontainers": "true", **_labels(sandbox, run_id)}


def _published_port(container, port: int) -> int:
    container.reload()
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") == LOOPBACK:
            return int(binding["HostPort"])
    raise TestbedError(f"{container.name}: port {port}/tcp is not published on {LOOPBACK}: {bindings}")


class _LoopbackContainer(DockerContainer):
    """A DockerContainer whose ports are published on 127.0.0.1 only, on random host ports."""

    def publish_on_loopback(self, *ports: int) -> "_LoopbackContainer":
        for port in ports:
            # docker-py accepts (host_ip, host_port); None picks a free port.
            self.ports[f"{port}/tcp"] = (LOOPBACK, None)  # type: ignore[assignment]
        return self

    def with_system_paths_unconfined(self) -> "_LoopbackContainer":
        """As `docker run --security-opt systempaths=unconfined`: nothing of /proc or /sys
        masked or read-only (systemd and the inner dockerd write /proc/sys). docker-py
        has no such option, so this container's own API client adds the two fields."""
        api = self.get_docker_client().client.api
        create = api.create_container_from_config

        def create_unmasked(config, name=None, platform=None):
            config["HostConfig"]["MaskedPaths"] = []
            config["HostConfig"]["ReadonlyPaths"] = []
            return create(config, name, platform)

        api.create_container_from_config = create_unmasked
        return self
