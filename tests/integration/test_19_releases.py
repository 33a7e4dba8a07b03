"""Scenario 19: releases on the shared server, under a steady request loop through Caddy.
An update drops no request; a version that never gets healthy never replaces the
running one; a rollback to the previous release drops no request either."""

import pytest

from tests.integration.helpers import app_copy, audit_log, deploy, failed_deploy, start_times
from tests.testbed import harness
from tests.testbed.load import RequestLoop

PATHS = ("/api/health", "/", "/api/db-health")


def api_image(server):
    _, image = server.exec("docker inspect --format '{{.Config.Image}}' srq-hpn-api")
    return image.strip()


def with_version_endpoint(tmp_path, version):
    app = app_copy(harness.SAMPLE_APP, tmp_path / f"app-{version}")
    main = app / "apps/api/app/main.py"
    main.write_text(main.read_text() + f'\n\n@app.get("/api/version")\ndef version():\n    return {{"version": {version}}}\n')
    return app


@pytest.fixture(scope="module")
def original_image(deployed, server):
    return api_image(server)


@pytest.fixture(scope="module")
def original_release(deployed, server):
    _, current = server.exec("cat /var/lib/srq-hpn/releases/current")
    return current.strip()


def test_an_update_drops_no_request(deployed, server, testbed, caddy_ca, original_image, original_release, tmp_path):
    app = with_version_endpoint(tmp_path, 2)
    before = start_times(server)
    with RequestLoop(server, caddy_ca, PATHS) as loop:
        deploy(server, testbed.settings(app))
    assert loop.sent >= 100, loop.summary()
    assert loop.failed == 0, loop.summary()
    assert harness.https_get(server, "/api/version", caddy_ca).json() == {"version": 2}
    after = start_times(server)
    assert after["srq-hpn-caddy"] == before["srq-hpn-caddy"], "Caddy was restarted by an app update"
    assert after["srq-hpn-db"] == before["srq-hpn-db"]
    assert api_image(server) != original_image


def test_a_version_that_never_gets_healthy_never_replaces_the_running_one(deployed, server, testbed, caddy_ca,
                                                                         tmp_path):
    app = with_version_endpoint(tmp_path, 3)
    main = app / "apps/api/app/main.py"
    main.write_text(main.read_text().replace('    return {"ok": True, "service": "api"}',
                                             '    raise RuntimeError("this version never gets healthy")'))
    running = api_image(server)
    with RequestLoop(server, caddy_ca, PATHS) as loop:
        run = failed_deploy(server, testbed.settings(app, srq_hpn_ready_timeout=15))
    assert loop.sent >= 100, loop.summary()  # the loop ran across the failed swap (15 s at 30 requests/s)
    assert loop.failed == 0, loop.summary()
    assert "the new version of api did not become ready" in run.output
    assert "the previous version serves again" in run.output
    assert api_image(server) == running  # put back on its previous version
    assert harness.https_get(server, "/api/version", caddy_ca).json() == {"version": 2}
    _, leftovers = server.exec("docker ps -a --format '{{.Names}}'")
    assert not [name for name in leftovers.split() if name.endswith("-standby")], leftovers
    assert audit_log(server)[-1]["result"].startswith("failed: ")


def test_rollback_to_the_previous_release_drops_no_request(deployed, server, testbed, caddy_ca, original_image,
                                                          original_release):
    with RequestLoop(server, caddy_ca, PATHS) as loop:
        run = harness.run_pyinfra(server.inventory(**testbed.settings()), "rollback.py", "-y")
    assert run.returncode == 0, run.describe()
    assert loop.sent >= 30, loop.summary()  # the loop ran across the rollback's swap
    assert loop.failed == 0, loop.summary()
    assert api_image(server) == original_image
    assert harness.https_get(server, "/api/version", caddy_ca).status == 404  # the original has no such endpoint
    last = audit_log(server)[-1]
    assert (last["action"], last["result"], last["release"]) == ("rollback", "ok", original_release)

    # The shared server runs the sample's release again: a deploy of the sample only ships
    # its files back (the failed version's were left in the checkout), and restarts nothing.
    before = start_times(server)
    changed = deploy(server, testbed.settings()).changed_operations()
    assert changed == [f"Ship the app's repository | Ensure /opt/srq-hpn holds the files of {harness.SAMPLE_APP} "
                       f"(release {original_release})"]
    assert start_times(server) == before
