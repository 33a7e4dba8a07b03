"""The testbed of a test run (or of the sandbox): a user-defined network, a registry
that the servers' Docker uses as its Docker Hub mirror, holding the stand-in images,
and the servers started on that network."""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from testcontainers.core.network import Network

from tests.testbed.acme import Pebble, TestDns, start_dns, start_pebble
from tests.testbed.base import (
    DOMAIN,
    LOOPBACK,
    REGISTRY_ALIAS,
    REGISTRY_HOST,
    REGISTRY_MIRROR,
    REGISTRY_PORT,
    RUN_ID,
    SAMPLE_APP,
    SERVER_READY_TIMEOUT,
    STAND_INS,
    TestbedError,
    _docker,
    _labels,
    _LoopbackContainer,
    _published_port,
)
from tests.testbed.cleanup import sweep
from tests.testbed.images import ensure_images
from tests.testbed.managed_db import ManagedDatabase, start_managed_db
from tests.testbed.servers import Server, _NamedNetwork, generate_ssh_key, start_server

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
    dns: TestDns | None = None  # the test DNS, once a scenario needs it
    pebbles: list[Pebble] = field(default_factory=list)
    managed_dbs: list[ManagedDatabase] = field(default_factory=list)
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
                     timeout: float = SERVER_READY_TIMEOUT, test_dns: bool = False) -> Server:
        """Start a fresh server on this testbed's network, with a new SSH key unless given;
        `test_dns`: its resolver answers the test domains as the test DNS says (see acme_dns)."""
        if key_path is None:
            key_path = generate_ssh_key(self.workdir / f"ssh-{name_suffix}")
        server = start_server(
            name_suffix, network=self.network, key_path=key_path, image=self.images.get("server"),
            sandbox=self.sandbox, name=name, timeout=timeout, run_id=self.run_id,
            dns=[self.acme_dns().ip] if test_dns else None,
        )
        self.servers.append(server)
        self._say(f"server {server.name} ready in {server.ready_seconds:.1f}s "
                  f"(ssh 127.0.0.1:{server.ssh_port}, http :{server.http_port}, https :{server.https_port})")
        return server

    # -- the ACME side: the test DNS and Pebble ------------------------------------------

    def acme_dns(self) -> TestDns:
        """The test network's DNS server (started at the first call): the test domains'
        A records, as a scenario sets them."""
        if self.dns is None:
            self.dns = start_dns(self.network, sandbox=self.sandbox, run_id=self.run_id,
                                 name=f"{self.name}-dns")
            self._say(f"DNS server {self.dns.ip} answers the zone example.org, forwards the rest")
        return self.dns

    def start_pebble(self, alias: str, **options: Any) -> Pebble:
        """A Pebble on this testbed's network under `alias` (see tests.testbed.acme.start_pebble)."""
        pebble = start_pebble(self.network, alias, self.acme_dns(), sandbox=self.sandbox, run_id=self.run_id,
                              **options)
        self.pebbles.append(pebble)
        self._say(f"Pebble {pebble.directory} ({pebble.ip}) {options or ''}")
        return pebble

    # -- a managed database's stand-in ---------------------------------------------------

    def start_managed_db(self, suffix: str = "managed-db") -> ManagedDatabase:
        """A PostgreSQL of its own on this testbed's network, TLS only, with a non-superuser admin
        (see tests.testbed.managed_db); removed with the testbed."""
        database = start_managed_db(self.network, self.images["postgres"], self.workdir, sandbox=self.sandbox,
                                    run_id=self.run_id, name=f"{self.name}-{suffix}")
        self.managed_dbs.append(database)
        self._say(f"managed database {database.alias} ({database.address}:5432, TLS, admin "
                  f"{database.settings()['postgres_user']} without SUPERUSER)")
        return database

    def settings(self, app: Path = SAMPLE_APP, **overrides: Any) -> dict[str, Any]:
        return testbed_settings(app, **overrides)

    # -- tearing it down -------------------------------------------------------------

    def close(self) -> None:
        """Remove the servers, the registry and the network of this testbed."""
        for server in self.servers:
            server.remove()
        self.servers.clear()
        for pebble in self.pebbles:
            pebble.remove()
        self.pebbles.clear()
        for database in self.managed_dbs:
            database.remove()
        self.managed_dbs.clear()
        if self.dns is not None:
            self.dns.remove()
            self.dns = None
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
