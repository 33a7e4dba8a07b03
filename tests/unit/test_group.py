"""Several servers: the role settings' rules, an app server's layer and Caddyfile, and the
edge's Caddyfile and compose file."""

from __future__ import annotations

import pytest
import yaml

from tasks import deploy_layer, layout, render
from tasks.settings import Settings, load_defaults
from tasks.validation import check_settings

APP = {"srq_hpn_domain": "example.com", "srq_hpn_role": "app", "srq_hpn_private_address": "10.0.0.5",
       "postgres_host": "db.internal", "postgres_sslmode": "require", "backup_wal_archive": False}


def settings(**data) -> Settings:
    return Settings.from_data({**load_defaults(), **data})


def test_an_app_server_with_its_address_and_external_database_passes(defaults):
    assert check_settings(APP, defaults, {}) == []


@pytest.mark.parametrize("data, message", [
    ({"srq_hpn_role": "database"}, "srq_hpn_role must be one of server, app, edge"),
    ({"srq_hpn_private_address": ""}, "srq_hpn_private_address is required on an app server"),
    ({"srq_hpn_private_address": "app1.internal"}, "srq_hpn_private_address must be an IP address"),
    ({"postgres_host": "", "postgres_sslmode": "verify-full", "backup_wal_archive": True},
     "postgres_host is required on an app server"),
    ({"srq_hpn_caddyfile": "repository"}, "srq_hpn_caddyfile must be \"template\" on an app server"),
])
def test_role_rules(defaults, data, message):
    found = check_settings({**APP, **data}, defaults, {})
    assert any(message in problem for problem in found), found


def test_an_app_servers_caddy_publishes_port_80_on_its_private_address_only():
    config = {"name": "srq-hpn", "services": {name: {"image": "x"} for name in layout.SERVICES}}
    config["services"]["caddy"]["ports"] = [{"target": 80, "published": "80"}, {"target": 443, "published": "443"}]
    layer = deploy_layer.build_layer(config, app_dir="/opt/srq-hpn", caddy_dir="/var/lib/srq-hpn/caddy",
                                     caddyfile_template=True, db_on_localhost=False, release="r", tags={},
                                     private_address="10.0.0.5")
    assert list(layer.document["services"]["caddy"]["ports"]) == [
        {"target": 80, "published": "80", "protocol": "tcp", "host_ip": "10.0.0.5"}]
    assert any("443" in correction for correction in layer.corrections)


def test_an_app_servers_caddyfile_serves_plain_http_without_a_certificate():
    text = render.caddyfile(settings(**APP))
    assert "\n:80 {\n" in text and "{$DOMAIN}" not in text
    assert "tls internal" not in text and "Strict-Transport-Security" not in text
    assert "reverse_proxy api:8000" in text and "reverse_proxy web:3000" in text


def test_the_edge_balances_both_routes_across_the_app_servers_with_active_health_checks():
    text = render.edge_caddyfile(settings(srq_hpn_domain="example.com", srq_hpn_role="edge"),
                                 ["10.0.0.5", "10.0.0.6", "fd00::7"])
    assert text.count("reverse_proxy 10.0.0.5:80 10.0.0.6:80 [fd00::7]:80 {") == 2
    assert "handle /api/* {" in text and "health_uri /api/health" in text and "health_uri /\n" in text
    assert text.count(f"health_interval {layout.EDGE_HEALTH_INTERVAL}") == 2
    assert "example.com {" in text and "Strict-Transport-Security" in text


def test_the_edge_runs_caddy_alone_with_its_caddyfile():
    edge = settings(srq_hpn_domain="example.com", srq_hpn_role="edge")
    document = yaml.safe_load(render.edge_compose(edge))
    assert document["name"] == layout.EDGE_PROJECT and list(document["services"]) == ["caddy"]
    caddy = document["services"]["caddy"]
    assert caddy["container_name"] == layout.EDGE_CONTAINER and caddy["image"] == layout.EDGE_IMAGE
    assert caddy["ports"] == ["80:80", "443:443", "443:443/udp"]
    assert caddy["volumes"][0]["source"] == edge.paths.edge_caddyfile


def test_the_servers_of_a_group_must_agree_on_the_site_database_and_release():
    app = {"srq_hpn_domain": "example.com", "postgres_host": "db.internal", "srq_hpn_app_local_path": "../app",
           "srq_hpn_private_address": "10.0.0.5"}
    servers = {"app1": ("app", app),
               "app2": ("app", {**app, "postgres_host": "other.internal", "srq_hpn_private_address": "10.0.0.5"}),
               "edge": ("edge", {"srq_hpn_domain": "example.org", "postgres_host": "whatever"})}
    from tasks.group import disagreements

    assert disagreements(servers) == [
        "postgres_host is 'other.internal' on app2 but 'db.internal' on app1: the servers of a group share it",
        "srq_hpn_private_address 10.0.0.5 is both app1's and app2's",
        "srq_hpn_domain is 'example.org' on edge but 'example.com' on app1: the servers of a group share it",
    ]
    servers["app2"] = ("app", {**app, "srq_hpn_private_address": "10.0.0.6"})
    servers["edge"] = ("edge", {"srq_hpn_domain": "example.com"})
    assert disagreements(servers) == []
