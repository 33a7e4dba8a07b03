"""Scenario 15: failures on the server explain themselves, and the running version
keeps serving. Each is injected into a copy of the second app: a migration that
cannot import, a compose file Compose rejects, a variable nothing provides, a build
that fails, and (last: it replaces the database container) a database healthcheck
that never passes. Every one stops the deploy with the failing command's own words
and a hint, never a traceback of the deploy itself; the lock is released and the
audit log says what failed (what the plan finds stops the deploy before it changes
anything: no lock, no audit line)."""

import pytest

from tests.integration.conftest import VARIANT_ENV
from tests.integration.helpers import app_copy, audit_log, deploy, failed_deploy, lock_is_free
from tests.testbed import harness


@pytest.fixture
def broken_app(tmp_path):
    return app_copy(harness.VARIANT_APP, tmp_path / "variant-app")


def still_serving(server, ca):
    assert harness.https_get(server, "/api/health", ca).text == '{"ok":true,"service":"api"}'


def assert_failure_recorded(server, what):
    assert lock_is_free(server), "the failed run left the deploy lock behind"
    last = audit_log(server)[-1]
    assert last["result"].startswith("failed: ") and what in last["result"], last


def test_a_migration_that_fails_to_import(variant_deployed, variant_server, variant_settings, variant_ca, broken_app):
    (broken_app / "apps/api/migrations/versions/9a0b1c2d3e4f_broken.py").write_text(
        'import not_a_module_of_this_app\n\nrevision = "9a0b1c2d3e4f"\ndown_revision = "3f2a1b9c0d11"\n')
    run = failed_deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(broken_app)},
                        env=VARIANT_ENV)
    assert "ModuleNotFoundError: No module named 'not_a_module_of_this_app'" in run.output
    assert "hint: the lines above are alembic's; nothing was restarted and the running version keeps serving" \
        in run.output
    still_serving(variant_server, variant_ca)
    assert_failure_recorded(variant_server, "migration")


def test_a_compose_file_compose_rejects(variant_deployed, variant_server, variant_settings, variant_ca, broken_app):
    compose = broken_app / "compose.yaml"
    compose.write_text(compose.read_text().replace("  worker:\n", "  worker:\n    buildd: apps/api\n"))
    audit_before = audit_log(variant_server)
    run = failed_deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(broken_app)},
                        env=VARIANT_ENV)
    # Found by the plan, before anything changed: Compose read the release's files beside the live ones.
    assert ("docker compose cannot read the app's compose file on 127.0.0.1 (nothing on the server was changed); "
            "its own words:") in run.output
    assert "buildd" in run.output.split("its own words:", 1)[1]
    assert "run the same on the server to see it" in run.output
    assert "Starting operation" not in run.output
    still_serving(variant_server, variant_ca)
    assert audit_log(variant_server) == audit_before and lock_is_free(variant_server)


def test_a_variable_nothing_provides(variant_deployed, variant_server, variant_settings, variant_ca, broken_app):
    compose = broken_app / "compose.yaml"
    compose.write_text(compose.read_text().replace("      SITE_NAME: ${SITE_NAME:?set SITE_NAME}",
                                                   "      SITE_NAME: ${SITE_NAME:?set SITE_NAME}\n"
                                                   "      MAIL_TOKEN: ${MAIL_TOKEN:?set MAIL_TOKEN}"))
    run = harness.run_pyinfra(variant_server.inventory(**{**variant_settings, "srq_hpn_app_local_path": str(broken_app)}),
                              "deploy.py", "-y", env=VARIANT_ENV)
    assert run.returncode != 0
    assert ("MAIL_TOKEN (asked for by compose.yaml (api)) has no value: set it in app_env for a plain value "
            "(--data or group_data), or declare it in app_secrets and export MAIL_TOKEN=... before running pyinfra "
            "for a secret") in run.output
    assert "Starting operation" not in run.output  # a preflight error: nothing ran on the server
    still_serving(variant_server, variant_ca)


def test_a_build_that_fails(variant_deployed, variant_server, variant_settings, variant_ca, broken_app):
    dockerfile = broken_app / "apps/web/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY server.mjs .", "COPY server.mjs .\nRUN exit 7"))
    run = failed_deploy(variant_server, {**variant_settings, "srq_hpn_app_local_path": str(broken_app)},
                        env=VARIANT_ENV)
    assert "exit code: 7" in run.output or "exit 7" in run.output, run.output[-3000:]
    assert "hint: the lines above are the build's own; the running version keeps serving" in run.output
    still_serving(variant_server, variant_ca)
    assert_failure_recorded(variant_server, "images")


def test_a_database_healthcheck_that_never_passes(variant_deployed, variant_server, variant_settings, variant_ca,
                                                  broken_app):
    compose = broken_app / "compose.yaml"
    compose.write_text(compose.read_text().replace(
        'test: ["CMD", "pg_isready", "-q", "-U", "${POSTGRES_USER}", "-d", "${POSTGRES_DB}"]',
        'test: ["CMD", "false"]'))
    settings = {**variant_settings, "srq_hpn_app_local_path": str(broken_app), "postgres_healthy_timeout": 15}
    run = failed_deploy(variant_server, settings, env=VARIANT_ENV)
    assert "db (srq-hpn-db) is not ready after 15s" in run.output, run.output[-3000:]
    assert "Its last log lines:" in run.output
    assert "  | " in run.output.split("Its last log lines:", 1)[1]  # the container's own lines follow
    assert "hint: see the lines above" in run.output
    assert_failure_recorded(variant_server, "db runs its current configuration")

    # The good app again: the deploy converges.
    deploy(variant_server, variant_settings, env=VARIANT_ENV)
    still_serving(variant_server, variant_ca)
