"""Scenario 18: srq_hpn_caddyfile = "repository" keeps the app's own Caddyfile (the
deploy then writes none), and "template" brings the deploy's back."""

from tests.integration.helpers import deploy
from tests.testbed import harness


def caddy_mounts(server):
    _, mounts = server.exec("docker inspect --format '{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}' "
                            "srq-hpn-caddy")
    return mounts.split()


def test_the_repositorys_own_caddyfile_and_back(deployed, server, testbed, caddy_ca):
    # The repository's Caddyfile has no `tls internal`, so no certificate can be had
    # here (no ACME server): the check through Caddy is left out for this run.
    deploy(server, {**testbed.settings(), "srq_hpn_caddyfile": "repository", "srq_hpn_verify": False})
    assert "/opt/srq-hpn/caddy:/etc/caddy" in caddy_mounts(server)
    _, served = server.exec("docker exec srq-hpn-caddy cat /etc/caddy/Caddyfile")
    assert served == (harness.SAMPLE_APP / "caddy" / "Caddyfile").read_text()
    redirect = harness.http_get(server, "/")
    assert redirect.status == 308 and redirect.header("location") == f"https://{harness.DOMAIN}/"

    deploy(server, testbed.settings())
    assert "/var/lib/srq-hpn/caddy:/etc/caddy" in caddy_mounts(server)
    assert harness.https_get(server, "/api/health", caddy_ca).status == 200
