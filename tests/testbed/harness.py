"""The testbed, in the words of the domain: a registry holding the stand-in images,
"fresh VPS" server containers reachable over SSH, the real pyinfra CLI run against
them, and the checks an operator would make from outside (HTTPS with a verified
certificate, the database through an SSH tunnel).

Used by tests/integration/conftest.py and by `python -m tests.testbed.sandbox`.

Everything created here carries the labels `org.testcontainers=true` and either
`srq-hpn-testbed=1` (test runs; `sweep()` removes those) or `srq-hpn-sandbox=1`
(the long-lived sandbox, never swept by the tests). Every port is published on
127.0.0.1 only; no traffic leaves this machine except what the servers' own apt does.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import io
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

# testcontainers' reaper (Ryuk) image cannot be pulled here: clean up by label instead.
# This must be set before testcontainers reads its configuration.
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"

import docker  # noqa: E402  (after the environment above)
import paramiko  # noqa: E402
from testcontainers.core.config import testcontainers_config  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.network import Network  # noqa: E402

from tasks import layout  # noqa: E402
from tests.testbed.images import ensure_images  # noqa: E402

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


# ---------------------------------------------------------------------------
# SSH keys
# ---------------------------------------------------------------------------

def generate_ssh_key(directory: Path, name: str = "id_ed25519") -> Path:
    """Write a new ed25519 key pair (OpenSSH format) to directory; return the private key's path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = directory / name
    private.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ))
    private.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (directory / f"{name}.pub").write_bytes(public + b" srq-hpn-testbed\n")
    return private


def _public_key(key_path: Path) -> bytes:
    return Path(f"{key_path}.pub").read_bytes()


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

@dataclass
class Server:
    """A running "fresh VPS" container: Debian 13, systemd, sshd, no Docker yet."""

    name: str
    container: Any  # docker.models.containers.Container
    key_path: Path
    ssh_port: int
    http_port: int
    https_port: int
    volume: str | None = None
    network_alias: str | None = None
    ready_seconds: float | None = None  # from container start to systemd up and sshd answering

    @classmethod
    def attach(cls, container_name: str, key_path: Path) -> "Server":
        """The Server object of an existing, running server container (the sandbox's)."""
        container = _docker().containers.get(container_name)
        return cls(
            name=container.name,
            container=container,
            key_path=Path(key_path),
            ssh_port=_published_port(container, SERVER_PORTS["ssh"]),
            http_port=_published_port(container, SERVER_PORTS["http"]),
            https_port=_published_port(container, SERVER_PORTS["https"]),
            volume=next((m["Name"] for m in container.attrs["Mounts"] if m["Destination"] == "/var/lib/docker"), None),
        )

    # -- looking at it from outside ------------------------------------------------

    def exec(self, cmd: str | Sequence[str], *, check: bool = True,
             timeout: float | None = None) -> tuple[int, str]:
        """Run a command inside the server with `docker exec` (a shell line, or argv);
        returns (exit code, stdout and stderr together). With check (the default) a
        non-zero exit raises TestbedError showing the output; check=False returns it."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if timeout is None:
            result = self.container.exec_run(argv, demux=False)
            code, output = result.exit_code, (result.output or b"").decode(errors="replace")
        else:
            done = subprocess.run(
                ["docker", "exec", self.container.id, *argv],
                capture_output=True, text=True, errors="replace", timeout=timeout,
            )
            code, output = done.returncode, done.stdout + done.stderr
        if check and code != 0:
            raise TestbedError(f"{self.name}: `{cmd if isinstance(cmd, str) else ' '.join(argv)}` "
                               f"exited with {code}:\n{output[-4000:]}")
        return code, output

    def status(self) -> str:
        """Docker's view of the container: running, exited (code N), ..."""
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "removed"
        state = self.container.attrs["State"]
        if state["Status"] == "exited":
            return f"exited (code {state['ExitCode']}{', OOM-killed' if state.get('OOMKilled') else ''})"
        return state["Status"]

    def system_state(self) -> str:
        """`systemctl is-system-running`: running, degraded, starting, ..."""
        _code, output = self.exec("systemctl is-system-running", check=False, timeout=30)
        return output.strip() or "unknown"

    def logs(self, tail: int = 50) -> str:
        """The container's own output, then the last lines of systemd's journal."""
        try:
            own = self.container.logs(tail=tail).decode(errors="replace")
        except docker.errors.APIError as error:
            own = f"(no container logs: {error})"
        _code, journal = self.exec(f"journalctl --no-pager -q -n {int(tail)}", check=False, timeout=30)
        return f"{own}--- journal ---\n{journal}"

    def failed_units(self) -> str:
        _code, output = self.exec("systemctl --failed --no-pager --no-legend", check=False, timeout=30)
        return output.strip()

    def diagnostics(self, tail: int = 50) -> str:
        """dump_diagnostics() as text (for a pytest report section)."""
        buffer = io.StringIO()
        dump_diagnostics(self, out=buffer, tail=tail)
        return buffer.getvalue()

    # -- reaching it like an operator -------------------------------------------------

    def ssh_client(self, timeout: float = 10.0) -> paramiko.SSHClient:
        """A paramiko client logged in as root with the run's key (caller closes it)."""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # host keys are made at first boot
        client.connect(
            LOOPBACK, port=self.ssh_port, username="root", key_filename=str(self.key_path),
            look_for_keys=False, allow_agent=False, timeout=timeout, banner_timeout=timeout,
            auth_timeout=timeout,
        )
        return client

    def inventory_entry(self, **settings: Any) -> list:
        """This server as an inventory entry `[host, data]` for run_pyinfra()."""
        return [LOOPBACK, {
            "ssh_port": self.ssh_port,
            "ssh_user": "root",
            "ssh_key": str(self.key_path),
            "ssh_strict_host_key_checking": "no",
            "ssh_known_hosts_file": "/dev/null",
            **settings,
        }]

    def wait_until_ready(self, timeout: float = SERVER_READY_TIMEOUT) -> float:
        """Wait until systemd has booted (running or degraded) and sshd takes the key;
        return the seconds waited. On timeout, or if the container stops, raise
        TestbedError saying which, with the failed units and the last log lines."""
        return _wait_until_ready(self, timeout)

    def inventory(self, group: str = "sandbox", /, **settings: Any) -> dict[str, list]:
        """An inventory of just this server for run_pyinfra(): {group: [inventory_entry]}."""
        return {group: [self.inventory_entry(**settings)]}

    # -- ending it -----------------------------------------------------------------

    def stop(self, timeout: int = 30) -> None:
        """Shut the server down as systemd would (SIGRTMIN+3); the container is kept."""
        with contextlib.suppress(docker.errors.NotFound):
            self.container.stop(timeout=timeout)

    def remove(self) -> None:
        """Remove the container and its /var/lib/docker volume."""
        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)
        if self.volume:
            with contextlib.suppress(docker.errors.NotFound):
                _docker().volumes.get(self.volume).remove(force=True)


def _wait_until_ready(server: Server, timeout: float) -> float:
    """Wait for systemd to finish booting and sshd to accept the key; return seconds taken."""
    started = time.monotonic()
    deadline = started + timeout
    state, ssh_error = "not asked yet", "not tried yet"
    while time.monotonic() < deadline:
        status = server.status()
        if status != "running":
            raise TestbedError(_not_ready_report(server, f"the server container stopped: {status}", timeout))
        state = server.system_state()
        if state in ("running", "degraded"):
            try:
                server.ssh_client(timeout=5).close()
                return time.monotonic() - started
            except (paramiko.SSHException, OSError, EOFError) as error:
                ssh_error = f"{type(error).__name__}: {error}"
        time.sleep(0.5)
    raise TestbedError(_not_ready_report(
        server,
        f"the server was not ready within {timeout:.0f}s "
        f"(still running, so slow rather than crashed; systemd says {state!r}; last SSH attempt: {ssh_error})",
        timeout,
    ))


def _not_ready_report(server: Server, what: str, _timeout: float) -> str:
    lines = [f"{server.name}: {what}"]
    with contextlib.suppress(Exception):
        lines.append("systemctl --failed:\n" + (server.failed_units() or "(none)"))
    with contextlib.suppress(Exception):
        lines.append("last log lines:\n" + server.logs(40))
    return "\n".join(lines)


def start_server(
    name_suffix: str,
    *,
    network: str,
    key_path: Path,
    image: str | None = None,
    sandbox: bool = False,
    name: str | None = None,
    timeout: float = SERVER_READY_TIMEOUT,
    run_id: str = RUN_ID,
) -> Server:
    """Start a server container on `network` and wait until it is ready for SSH.

    Its network alias and hostname are `name` (default srq-hpn-<suffix>-<run id>);
    ports 22, 80 and 443 are published on 127.0.0.1; /var/lib/docker is a labelled
    named volume; root's authorized_keys holds `key_path`'s public key.
    """
    image = image or ensure_images(["server"], log=None)["server"]
    name = name or f"srq-hpn-{name_suffix}-{run_id}"
    labels = _labels(sandbox, run_id)
    client = _docker()
    volume = client.volumes.create(f"{name}-var-lib-docker", labels=_all_labels(sandbox, run_id)).name
    container = (
        _LoopbackContainer(
            image,
            name=name,
            hostname=name,
            labels=labels,
            cap_add=SERVER_CAPABILITIES,
            security_opt=SERVER_SECURITY_OPTS,
            cgroupns="private",
            stop_signal=SERVER_STOP_SIGNAL,
        )
        .publish_on_loopback(*SERVER_PORTS.values())
        .with_system_paths_unconfined()
        .with_env("container", "docker")
        .with_tmpfs_mount("/run")
        .with_tmpfs_mount("/run/lock")
        .with_volume_mapping(volume, "/var/lib/docker", "rw")
        .with_copy_into_container(_public_key(key_path), "/root/.ssh/authorized_keys", 0o600)
    )
    container.with_network(_NamedNetwork(network)).with_network_aliases(name)
    started = time.monotonic()
    try:
        container.start()
    except Exception:
        with contextlib.suppress(Exception):
            container.get_wrapped_container().remove(force=True, v=True)
        with contextlib.suppress(Exception):
            client.volumes.get(volume).remove(force=True)
        raise
    wrapped = container.get_wrapped_container()
    time.sleep(0.2)
    wrapped.reload()
    if wrapped.status != "running":
        state = wrapped.attrs["State"]
        output = wrapped.logs(tail=40).decode(errors="replace")
        raise TestbedError(f"{name}: the server container stopped right after start "
                           f"(exit code {state.get('ExitCode')}, {state.get('Error') or 'no error'}); "
                           f"its output:\n{output or '(none)'}")
    server = Server(
        name=name,
        container=wrapped,
        key_path=Path(key_path),
        ssh_port=_published_port(wrapped, SERVER_PORTS["ssh"]),
        http_port=_published_port(wrapped, SERVER_PORTS["http"]),
        https_port=_published_port(wrapped, SERVER_PORTS["https"]),
        volume=volume,
        network_alias=name,
    )
    server.wait_until_ready(timeout)
    server.ready_seconds = time.monotonic() - started
    return server


class _NamedNetwork:
    """What DockerContainer.start needs of a network: its name."""

    def __init__(self, name: str) -> None:
        self.name = name


# ---------------------------------------------------------------------------
# The testbed: network, registry with the stand-ins, servers
# ---------------------------------------------------------------------------

@dataclass
class Testbed:
    """A user-defined network with a registry (alias registry.test) holding the stand-in
    images, on which servers are started. `Testbed().start()` for a test run;
    `Testbed(sandbox=True, name="srq-hpn-sandbox")` for the long-lived sandbox."""

    __test__ = False

    sandbox: bool = False
    name: str | None = None  # prefix of the network and registry names
    run_id: str = RUN_ID
    log: Any = print
    images: dict[str, str] = field(default_factory=dict)
    image_refs: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    registry: Any = None  # docker container
    registry_port: int | None = None
    servers: list[Server] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    _workdir: Path | None = None

    def __post_init__(self) -> None:
        self.name = self.name or f"srq-hpn-testbed-{self.run_id}"

    # -- bringing it up ----------------------------------------------------------

    def start(self) -> "Testbed":
        started = time.monotonic()
        self.images = ensure_images(log=self.log)
        self.timings["images"] = time.monotonic() - started
        if not self.sandbox:
            atexit.register(sweep, run_id=self.run_id)
        self._ensure_network()
        self._ensure_registry()
        started = time.monotonic()
        self.push_stand_ins()
        self.timings["push"] = time.monotonic() - started
        self._say(f"registry {REGISTRY_HOST} (127.0.0.1:{self.registry_port} here) holds the stand-ins "
                  f"[pushed in {self.timings['push']:.1f}s]")
        return self

    def _say(self, message: str) -> None:
        if self.log:
            self.log(f"testbed: {message}")

    def _ensure_network(self) -> None:
        client = _docker()
        existing = client.networks.list(names=[self.name])
        if existing:
            self.network = existing[0].name
            return
        network = Network(docker_network_kw={"labels": _labels(self.sandbox, self.run_id), "driver": "bridge"})
        network.name = self.name
        network.create()
        self.network = network.name

    def _ensure_registry(self) -> None:
        client = _docker()
        name = f"{self.name}-registry"
        with contextlib.suppress(docker.errors.NotFound):
            existing = client.containers.get(name)
            if existing.status == "running" and existing.image.tags and self.images["registry"] in existing.image.tags:
                self.registry = existing
                self.registry_port = _published_port(existing, REGISTRY_PORT)
                return
            existing.remove(force=True, v=True)
        container = (
            _LoopbackContainer(self.images["registry"], name=name, labels=_labels(self.sandbox, self.run_id))
            .publish_on_loopback(REGISTRY_PORT)
            .with_network(_NamedNetwork(self.network))
            .with_network_aliases(REGISTRY_ALIAS)
        )
        container.start()
        self.registry = container.get_wrapped_container()
        self.registry_port = _published_port(self.registry, REGISTRY_PORT)
        self._wait_for_registry()

    def _wait_for_registry(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "not tried"
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection(LOOPBACK, self.registry_port, timeout=2)
                connection.request("GET", "/v2/")
                status = connection.getresponse().status
                connection.close()
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as error:
                last = str(error)
            time.sleep(0.2)
        logs = self.registry.logs(tail=30).decode(errors="replace")
        raise TestbedError(f"the registry did not answer on 127.0.0.1:{self.registry_port} ({last}):\n{logs}")

    def push_stand_ins(self) -> dict[str, str]:
        """Push the stand-in images to the registry; set and return image_refs
        ({name: "registry.test:5000/srq-hpn/<name>:<tag>"})."""
        catalog = self.catalog()

        def push(name: str) -> float:
            started = time.monotonic()
            local = f"{LOOPBACK}:{self.registry_port}/{STAND_INS[name]}"
            repository, _, tag = STAND_INS[name].partition(":")
            if repository in catalog and self._registry_digest_matches(name, repository, tag):
                return 0.0
            for command in (["docker", "tag", self.images[name], local], ["docker", "push", "--quiet", local]):
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    raise TestbedError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
            subprocess.run(["docker", "image", "rm", local], capture_output=True)  # only the extra tag
            return time.monotonic() - started

        with ThreadPoolExecutor(max_workers=len(STAND_INS)) as pool:
            seconds = dict(zip(STAND_INS, pool.map(push, STAND_INS)))
        for name, took in seconds.items():
            self.timings[f"push {name}"] = took
        self.image_refs = {name: ref.removeprefix("library/") for name, ref in STAND_INS.items()}
        return self.image_refs

    def _registry_digest_matches(self, name: str, repository: str, tag: str) -> bool:
        """Whether the registry already holds this exact image (the sandbox's reused registry)."""
        image_id = _docker().images.get(self.images[name]).id
        try:
            connection = http.client.HTTPConnection(LOOPBACK, self.registry_port, timeout=10)
            connection.request("GET", f"/v2/{repository}/manifests/{tag}", headers={
                "Accept": "application/vnd.docker.distribution.manifest.v2+json",
            })
            response = connection.getresponse()
            body = response.read()
            connection.close()
            return response.status == 200 and json.loads(body)["config"]["digest"] == image_id
        except (OSError, ValueError, KeyError):
            return False

    def catalog(self) -> list[str]:
        """The repositories the registry holds (as the host sees it)."""
        connection = http.client.HTTPConnection(LOOPBACK, self.registry_port, timeout=10)
        connection.request("GET", "/v2/_catalog")
        body = connection.getresponse().read()
        connection.close()
        return json.loads(body).get("repositories", [])

    # -- servers -------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"srq-hpn-testbed-{self.run_id}-"))
        return self._workdir

    def start_server(self, name_suffix: str, *, key_path: Path | None = None, name: str | None = None,
                     timeout: float = SERVER_READY_TIMEOUT) -> Server:
        """Start a fresh server on this testbed's network, with a new SSH key unless given."""
        if key_path is None:
            key_path = generate_ssh_key(self.workdir / f"ssh-{name_suffix}")
        server = start_server(
            name_suffix, network=self.network, key_path=key_path, image=self.images.get("server"),
            sandbox=self.sandbox, name=name, timeout=timeout, run_id=self.run_id,
        )
        self.servers.append(server)
        self._say(f"server {server.name} ready in {server.ready_seconds:.1f}s "
                  f"(ssh 127.0.0.1:{server.ssh_port}, http :{server.http_port}, https :{server.https_port})")
        return server

    def settings(self, app: Path = SAMPLE_APP, **overrides: Any) -> dict[str, Any]:
        return testbed_settings(app, **overrides)

    # -- tearing it down -------------------------------------------------------------

    def close(self) -> None:
        """Remove the servers, the registry and the network of this testbed."""
        for server in self.servers:
            server.remove()
        self.servers.clear()
        if self.registry is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.registry.remove(force=True, v=True)
        if self.network:
            with contextlib.suppress(docker.errors.NotFound):
                _docker().networks.get(self.network).remove()
        if self._workdir is not None:
            import shutil
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> "Testbed":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()


def testbed_settings(app: Path = SAMPLE_APP, **overrides: Any) -> dict[str, Any]:
    """The deploy settings (pyinfra host data) that point the deploy at the testbed:
    the registry as Docker Hub's mirror, Caddy's internal CA, Debian's Docker."""
    return {
        "srq_hpn_domain": DOMAIN,
        "caddy_tls": "internal",
        "docker_install_method": "distro",
        "docker_registry_mirrors": [REGISTRY_MIRROR],
        "docker_insecure_registries": [REGISTRY_HOST],
        "srq_hpn_app_source": "upload",
        "srq_hpn_app_local_path": str(app),
        **overrides,
    }


# ---------------------------------------------------------------------------
# The real CLI
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# What an operator checks from outside
# ---------------------------------------------------------------------------

@dataclass
class HttpResponse:
    status: int
    headers: http.client.HTTPMessage  # case-insensitive: headers["content-type"]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        """One header's value, by case-insensitive name."""
        return self.headers.get(name, default)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _LoopbackHTTPConnection(http.client.HTTPConnection):
    """Talks to `domain` (Host header) but connects to 127.0.0.1:<published port>."""

    def __init__(self, domain: str, loopback_port: int, timeout: float) -> None:
        super().__init__(domain, 80, timeout=timeout)
        self._loopback_port = loopback_port

    def connect(self) -> None:
        self.sock = socket.create_connection((LOOPBACK, self._loopback_port), self.timeout)


class _LoopbackHTTPSConnection(http.client.HTTPSConnection):
    """Talks TLS to `domain` (SNI, Host, certificate hostname check) over 127.0.0.1:<port>."""

    def __init__(self, domain: str, loopback_port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(domain, 443, timeout=timeout, context=context)
        self._loopback_port = loopback_port
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((LOOPBACK, self._loopback_port), self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)


def _request(connection: http.client.HTTPConnection, method: str, path: str,
             headers: dict[str, str] | None, body: bytes | None) -> HttpResponse:
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return HttpResponse(response.status, response.headers, response.read())
    finally:
        connection.close()


def https_get(server: Server, path: str, cafile: str | os.PathLike, domain: str = DOMAIN, *,
              method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
              timeout: float = 15.0) -> HttpResponse:
    """GET https://<domain><path> from the server's published 443, verifying the
    certificate against `cafile` with hostname checking on. Redirects are not followed."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return _request(_LoopbackHTTPSConnection(domain, server.https_port, context, timeout),
                    method, path, headers, body)


def http_get(server: Server, path: str, domain: str = DOMAIN, *, method: str = "GET",
             headers: dict[str, str] | None = None, body: bytes | None = None,
             timeout: float = 15.0) -> HttpResponse:
    """GET http://<domain><path> from the server's published 80. Redirects are not followed."""
    return _request(_LoopbackHTTPConnection(domain, server.http_port, timeout), method, path, headers, body)


def caddy_root_ca(server: Server, dest: str | os.PathLike) -> Path:
    """Copy Caddy's internal root certificate out of the server to `dest`."""
    code, output = server.exec(["docker", "exec", CADDY_CONTAINER, "cat", CADDY_ROOT_CA], check=False, timeout=60)
    if code != 0 or "BEGIN CERTIFICATE" not in output:
        raise TestbedError(f"could not read Caddy's root certificate from {server.name} (exit {code}):\n{output}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(output[output.index("-----BEGIN CERTIFICATE-----"):])
    return dest


@contextlib.contextmanager
def db_tunnel(server: Server, remote_port: int = 5432, remote_host: str = LOOPBACK) -> Iterator[int]:
    """An SSH tunnel (paramiko direct-tcpip) from a random 127.0.0.1 port here to the
    server's 127.0.0.1:5432; yields the local port (for psycopg's host/port)."""
    client = server.ssh_client()
    transport = client.get_transport()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def pump(local: socket.socket) -> None:
        try:
            channel = transport.open_channel("direct-tcpip", (remote_host, remote_port), local.getpeername())
        except (paramiko.SSHException, OSError):
            local.close()
            return
        try:
            while not stop.is_set():
                readable, _, _ = select.select([local, channel], [], [], 0.2)
                if local in readable:
                    data = local.recv(65536)
                    if not data:
                        break
                    channel.sendall(data)
                if channel in readable:
                    data = channel.recv(65536)
                    if not data:
                        break
                    local.sendall(data)
        except OSError:
            pass
        finally:
            channel.close()
            local.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                local, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            worker = threading.Thread(target=pump, args=(local,), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(timeout=5)
        for worker in workers:
            worker.join(timeout=5)
        listener.close()
        client.close()


def dump_diagnostics(server: Server, out: TextIO | None = None, tail: int = 50) -> None:
    """Print what explains a failure on `server`: whether its container crashed,
    `docker ps -a` inside it, the last lines of each srq-hpn-* container, failed units."""
    out = out or sys.stdout
    status = server.status()
    print(f"\n===== diagnostics of {server.name} (container {status}) =====", file=out)
    if status != "running":
        print(f"the server container is not running: {status}; its last output:", file=out)
        with contextlib.suppress(Exception):
            print(server.container.logs(tail=tail).decode(errors="replace"), file=out)
        return
    _code, output = server.exec("docker ps -a 2>&1 || echo '(no docker engine on the server yet)'",
                                check=False, timeout=60)
    print(f"--- docker ps -a (inside the server) ---\n{output}", file=out)
    _code, names = server.exec("docker ps -a --format '{{.Names}}' 2>/dev/null | grep '^srq-hpn' || true",
                               check=False, timeout=60)
    for name in names.split():
        _code, logs = server.exec(["docker", "logs", "--tail", str(tail), name], check=False, timeout=60)
        print(f"--- last {tail} log lines of {name} ---\n{logs}", file=out)
    print(f"--- systemctl --failed ---\n{server.failed_units() or '(no failed units)'}", file=out)
    out.flush()


# ---------------------------------------------------------------------------
# Cleaning up
# ---------------------------------------------------------------------------

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


__all__ = [
    "DOMAIN", "REGISTRY_HOST", "STAND_INS", "HttpResponse", "PyinfraRun", "Server", "Testbed", "TestbedError", "caddy_root_ca",
    "db_tunnel", "describe_run", "docker_available", "dump_diagnostics", "generate_ssh_key",
    "http_get", "https_get", "run_pyinfra", "start_server", "sweep", "testbed_settings",
]
