"""Fixtures of the integration scenarios: one testbed (images, registry with the
stand-ins) per run, one shared server for the scenarios that can share it, fresh
servers for the rest. Every test under tests/integration is marked `integration` here
(the marker is declared in pyproject.toml);
without a Docker engine they are all skipped, saying why. When a test fails, the
diagnostics of the servers it used (containers, their logs, failed units) are added
to its report."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import checklist
from tests.testbed import harness
from tests.testbed.acme import Pebble

HERE = Path(__file__).resolve().parent
_FRESH_SERVERS = pytest.StashKey[list]()
_shared: dict[str, harness.Server] = {}


def _is_integration_path(item) -> bool:
    return HERE in Path(str(item.fspath)).resolve().parents


def pytest_collection_modifyitems(config, items):
    integration = []
    for item in items:
        if _is_integration_path(item):
            item.add_marker(pytest.mark.integration)
        if "integration" in item.keywords:
            integration.append(item)
    if not integration:
        return
    available, detail = harness.docker_available()
    if available:
        return
    skip = pytest.mark.skip(reason=(
        f"integration tests need a Docker engine, and none answers ({detail}); "
        "start one (bash tests/testbed/host-docker.sh) or deselect them with -m 'not integration'"
    ))
    for item in integration:
        item.add_marker(skip)


def _servers_of(item) -> list[harness.Server]:
    servers = [value for value in item.funcargs.values() if isinstance(value, harness.Server)]
    for name in ("server", "variant_server"):
        if name in item.fixturenames and name in _shared:
            servers.append(_shared[name])
    servers += item.stash.get(_FRESH_SERVERS, [])
    unique: dict[str, harness.Server] = {}
    for server in servers:
        unique.setdefault(server.name, server)
    return list(unique.values())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for server in _servers_of(item):
            try:
                text = server.diagnostics()
            except Exception as error:  # diagnostics must never hide the failure itself
                text = f"(could not collect diagnostics: {type(error).__name__}: {error})"
            report.sections.append((f"diagnostics of {server.name}", text))
        for pebble in [value for value in item.funcargs.values() if isinstance(value, Pebble)]:
            try:
                text = pebble.logs(60)
            except Exception as error:  # noqa: BLE001 - never hide the failure itself
                text = f"(could not read its log: {type(error).__name__}: {error})"
            report.sections.append((f"last log lines of the ACME server {pebble.alias}", text))
    return report


@pytest.fixture(scope="session")
def testbed():
    """Images ensured, network and registry up, stand-ins pushed; removed at the end.
    Leftovers of earlier, crashed runs are swept first (runs still going are left alone)."""
    harness.sweep(stale_only=True)
    bed = harness.Testbed()
    try:
        bed.start()
        yield bed
    finally:
        bed.close()
        harness.sweep(run_id=bed.run_id)


def _session_server(testbed, fixture: str, suffix: str):
    """A server kept for the whole run (its diagnostics join the report of a test using it)."""
    server = testbed.start_server(suffix)
    _shared[fixture] = server
    yield server
    _shared.pop(fixture, None)
    server.remove()


@pytest.fixture(scope="session")
def server(testbed):
    """The shared server: a fresh VPS, deployed once by the `deployed` fixture."""
    yield from _session_server(testbed, "server", "shared")


@pytest.fixture(scope="session")
def deployed(testbed, server):
    """The shared server after a first, successful deploy; returns that run. The
    checklist of that freshly deployed server is kept too (later scenarios add backups,
    drills and more to the shared server)."""
    run = harness.run_pyinfra(server.inventory(**testbed.settings()), "deploy.py", "-y", "--json")
    assert run.returncode == 0, f"the first deploy failed:\n{run.describe()}"
    _shared["fresh_checklist"] = checklist(server, testbed.settings())
    return run


@pytest.fixture(scope="session")
def fresh_checklist(deployed):
    """The checklist of the shared server right after its first deploy."""
    return _shared["fresh_checklist"]


@pytest.fixture
def fresh_server(testbed, request):
    """A factory of servers of the test's own: `server = fresh_server("preflight")`;
    each is removed after the test."""
    created: list[harness.Server] = []
    request.node.stash[_FRESH_SERVERS] = created

    def start(suffix: str) -> harness.Server:
        server = testbed.start_server(suffix)
        created.append(server)
        return server

    yield start
    for server in created:
        server.remove()


@pytest.fixture(scope="session")
def caddy_ca(deployed, server, testbed):
    """Caddy's internal root certificate, copied out of the shared server."""
    return harness.caddy_root_ca(server, testbed.workdir / "caddy-root.crt")


# The second app (tests/apps/variant-app) needs a plain variable and a secret.
VARIANT_SECRET = "ses-" + "7Hq2xW9vLk3ZpR8mN4tY6bJ1cF5dG0aE"
VARIANT_ENV = {"SESSION_SECRET": VARIANT_SECRET}


@pytest.fixture(scope="session")
def variant_settings(testbed):
    return testbed.settings(harness.VARIANT_APP, app_env={"SITE_NAME": "Harbor"}, app_secrets=["SESSION_SECRET"])


@pytest.fixture(scope="session")
def variant_server(testbed):
    """A server of its own for the second app."""
    yield from _session_server(testbed, "variant_server", "variant")


@pytest.fixture(scope="session")
def variant_deployed(testbed, variant_server, variant_settings):
    """The variant server after a first, successful deploy of the second app; returns that run."""
    run = harness.run_pyinfra(variant_server.inventory(**variant_settings), "deploy.py", "-y", "--json",
                              env=VARIANT_ENV)
    assert run.returncode == 0, f"the first deploy of the second app failed:\n{run.describe()}"
    return run


@pytest.fixture(scope="session")
def variant_ca(variant_deployed, variant_server, testbed):
    return harness.caddy_root_ca(variant_server, testbed.workdir / "variant-caddy-root.crt")
