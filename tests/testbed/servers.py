"""Servers: "fresh VPS" containers (Debian 13, systemd, sshd, no Docker) reachable
over SSH on 127.0.0.1, with the key the test run made for them."""

from __future__ import annotations

import contextlib
import io
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import docker
import paramiko

from tests.testbed.base import (
    LOOPBACK,
    RUN_ID,
    SERVER_CAPABILITIES,
    SERVER_PORTS,
    SERVER_READY_TIMEOUT,
    SERVER_SECURITY_OPTS,
    SERVER_STOP_SIGNAL,
    TestbedError,
    _all_labels,
    _docker,
    _labels,
    _LoopbackContainer,
    _published_port,
)
from tests.testbed.images import ensure_images

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
        from tests.testbed.diagnostics import dump_diagnostics

        buffer = io.StringIO()
        dump_diagnostics(self, out=buffer, tail=tail)
        return buffer.getvalue()

    def address(self) -> str:
        """The server's address on the test network (where the ACME server reaches it)."""
        self.container.reload()
        networks = self.container.attrs["NetworkSettings"]["Networks"]
        return next(iter(networks.values()))["IPAddress"]

    def reboot(self, timeout: float = SERVER_READY_TIMEOUT) -> float:
        """Reboot the server (its container stopped as systemd stops, and started again), and
        wait until it is ready; returns the seconds that took. Its ports are read again."""
        started = time.monotonic()
        self.container.restart(timeout=60)
        for attribute, port in (("ssh_port", "ssh"), ("http_port", "http"), ("https_port", "https")):
            setattr(self, attribute, _published_port(self.container, SERVER_PORTS[port]))
        self.wait_until_ready(timeout)
        return time.monotonic() - started

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

    def named_entry(self, name: str, **settings: Any) -> list:
        """This server under an inventory name of its own (several servers all reached on
        127.0.0.1, each on its own SSH port): `[name, data]`."""
        _host, data = self.inventory_entry(**settings)
        return [name, {"ssh_hostname": LOOPBACK, **data}]

    def wait_until_ready(self, timeout: float = SERVER_READY_TIMEOUT) -> float:
        """Wait until systemd has booted (running or degraded) and sshd takes the key;
        return the seconds waited. On timeout, or if the container stops, raise
        TestbedError saying which, with the failed units and the last log lines."""
        return _wait_until_ready(self, timeout)

    def inventory(self, group: str = "sandbox", /, **settings: Any) -> dict[str, list]:
        """An inventory of just this server for run_pyinfra(): {group: [inventory_entry]}."""
        return {group: [self.inventory_entry(**settings)]}

    # -- ending it -----------------------------------------------------------------

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
    dns: list[str] | None = None,
) -> Server:
    """Start a server container on `network` and wait until it is ready for SSH.

    Its network alias and hostname are `name` (default srq-hpn-<suffix>-<run id>);
    ports 22, 80 and 443 are published on 127.0.0.1; /var/lib/docker is a labelled
    named volume; root's authorized_keys holds `key_path`'s public key. `dns`: the
    servers Docker's DNS asks for the names that are not the network's own (the test
    DNS, which answers the test domains).
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
            **({"dns": list(dns)} if dns else {}),
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


def start_listener(testbed, image: str, suffix: str, port: int, probe: list[str], what: str,
                   command: list[str] | None = None):
    """A helper container of the testbed (a collector, a webhook receiver) on its network, named
    and aliased srq-hpn-<suffix>-<run id>, labelled like every testbed container (a sweep removes
    what a crashed run left); returned (docker container, name) once ``probe`` (run inside it)
    says it listens on ``port``. Raises TestbedError with its last lines when it does not within
    about ten seconds, or stops."""
    name = f"srq-hpn-{suffix}-{testbed.run_id}"
    container = _LoopbackContainer(image, name=name, labels=_labels(testbed.sandbox, testbed.run_id))
    if command:
        container = container.with_command(command)
    container = container.with_network(_NamedNetwork(testbed.network)).with_network_aliases(name)
    container.start()
    wrapped = container.get_wrapped_container()
    for _ in range(100):
        if wrapped.exec_run(probe).exit_code == 0:
            return wrapped, name
        wrapped.reload()
        if wrapped.status != "running":
            break
        time.sleep(0.1)
    logs = wrapped.logs(tail=30).decode(errors="replace")
    with contextlib.suppress(docker.errors.NotFound):
        wrapped.remove(force=True, v=True)
    raise TestbedError(f"{what} {name} did not listen on {port}:\n{logs}")
