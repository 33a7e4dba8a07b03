"""Scenario 17: an app whose compose file would start the database on a new, empty
volume while this stack's data lives in another is refused, naming both volumes;
nothing is restarted, and the right app converges again without a restart."""

from tests.integration.conftest import VARIANT_ENV
from tests.integration.helpers import deploy, failed_deploy, start_times
from tests.testbed import harness


def test_a_new_empty_volume_beside_the_data_is_refused(deployed, server, testbed, caddy_ca, variant_settings):
    before = start_times(server)
    run = failed_deploy(server, {**variant_settings}, env=VARIANT_ENV)
    assert ("Refusing to start the database on a new, empty volume srq-hpn_pgdata while srq-hpn_postgres_data "
            "holds this stack's data.") in run.output
    assert "hint: the compose project's name or the db volume's key changed" in run.output
    assert start_times(server) == before
    assert server.exec("docker volume inspect srq-hpn_pgdata", check=False)[0] != 0
    assert harness.https_get(server, "/api/db-health", caddy_ca).status == 200

    deploy(server, testbed.settings())
    assert start_times(server) == before
