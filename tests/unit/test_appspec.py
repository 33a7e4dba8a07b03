"""The app contract: variables a compose file needs, and the deploy's compose layer."""

import pytest
import yaml

from tasks import appspec, deploy_layer, layout
from tasks.settings import ROOT

SAMPLE = ROOT / "examples" / "srq-hpn-app"
VARIANT = ROOT / "tests" / "apps" / "variant-app"


def variables(text):
    return appspec.compose_variables(text)


def test_variables_without_a_default_are_required_with_where():
    found = variables("""
services:
  api:
    environment:
      A: ${A}
      B: $B
      C: ${C:?set C}
      D: ${D?}
      E: ${E:-fallback}
      F: ${F-}
      G: ${G:+yes}
      H: "$$NOT_A_VARIABLE"
      I: ${I:-${J}}
  web:
    build:
      args:
        K: prefix-${A}-suffix
x-top: ${TOP}
""")
    assert set(found.required) == {"A", "B", "C", "D", "TOP"}
    assert found.required["A"] == {"compose.yml (api)", "compose.yml (web)"}
    assert found.required["TOP"] == {"compose.yml"}
    assert {"E", "F", "G", "I", "J"} <= found.optional
    assert "NOT_A_VARIABLE" not in found.required and "NOT_A_VARIABLE" not in found.optional


def test_comments_and_keys_are_not_interpolated():
    found = variables("""
# ${IN_A_COMMENT}
services:
  api:
    environment:
      ${NOT_INTERPOLATED_KEY}: x
""")
    assert found.required == {}


def test_compose_own_variables_are_not_asked_of_the_operator():
    assert variables("services: {a: {image: '${COMPOSE_PROJECT_NAME}'}}").required == {}


def test_invalid_yaml_is_a_contract_error():
    with pytest.raises(appspec.ContractError, match="compose.yml is not valid YAML"):
        variables("services: [unclosed")
    with pytest.raises(appspec.ContractError, match="top level is not a mapping"):
        variables("- a list")


def test_example_variables():
    text = "# comment\nDOMAIN=\nexport TOKEN=x\n  SPACED = 1\nnot a line\n"
    assert appspec.example_variables(text) == ["DOMAIN", "TOKEN", "SPACED"]


def test_needed_variables_of_the_two_sample_apps():
    sample = appspec.needed_variables(
        {"compose.yml": (SAMPLE / "compose.yml").read_text()}, (SAMPLE / ".env.production.example").read_text()
    )
    assert set(sample) == {"DOMAIN", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_APP_USER",
                           "POSTGRES_APP_PASSWORD", "NEXT_PUBLIC_API_BASE_URL"}
    variant = appspec.needed_variables(
        {"compose.yaml": (VARIANT / "compose.yaml").read_text()}, (VARIANT / ".env.production.example").read_text()
    )
    assert {"SITE_NAME", "SESSION_SECRET", "POSTGRES_APP_USER"} <= set(variant)
    assert "compose.yaml (api)" in variant["SESSION_SECRET"] and ".env.production.example" in variant["SESSION_SECRET"]


def test_compose_file_names_follow_composes_own_order():
    assert appspec.compose_file_names(["compose.yml", "docker-compose.yml"]) == ["compose.yml"]
    assert appspec.compose_file_names(["compose.yaml", "compose.yml"]) == ["compose.yaml"]
    assert appspec.compose_file_names(["docker-compose.yml", "compose.override.yml"]) == [
        "docker-compose.yml", "compose.override.yml"]
    with pytest.raises(appspec.ContractError, match="no compose file at its root"):
        appspec.compose_file_names(["README.md"])


def config(**services):
    base = {name: {"image": "x"} for name in layout.SERVICES}
    base.update(services)
    return {"name": "srq-hpn", "services": base, "volumes": {}}


def layer(cfg, template=True, db_on_localhost=True):
    return deploy_layer.build_layer(cfg, app_dir="/opt/srq-hpn", caddy_dir="/var/lib/srq-hpn/caddy",
                               caddyfile_template=template, db_on_localhost=db_on_localhost,
                               release="abc123def456", tags={"api": "c0ffee000001"})


def port(target, published=None, host_ip="", protocol="tcp"):
    entry = {"mode": "ingress", "target": target, "published": str(published or target), "protocol": protocol}
    if host_ip:
        entry["host_ip"] = host_ip
    return entry


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("!override", lambda loader, node: ("override", loader.construct_sequence(node, deep=True)))
Loader.add_constructor("!reset", lambda loader, node: ("reset", loader.construct_sequence(node)))


def dumped(result):
    return yaml.load(deploy_layer.dump_override(result.document, "header"), Loader=Loader)["services"]


def test_guide_shaped_ports_need_no_correction():
    cfg = config(
        caddy={"image": "caddy:2", "ports": [port(80), port(443), port(443, protocol="udp")]},
        db={"image": "postgres:16", "ports": [port(5432, host_ip="127.0.0.1")]},
    )
    result = layer(cfg, template=False)
    assert result.corrections == []
    assert result.document == {"services": {}}


def test_ports_against_the_guide_are_corrected_and_named():
    cfg = config(
        caddy={"ports": [port(80), port(443), port(2019)]},
        db={"ports": [port(5432)]},
        api={"ports": [port(8000)], "build": {"context": "/opt/srq-hpn/apps/api"}},
        web={"ports": [port(3000, host_ip="127.0.0.1")]},
        worker={"ports": [port(9100), port(9101, host_ip="127.0.0.1")]},
    )
    result = layer(cfg, template=False)
    assert sorted(result.corrections) == [
        "api: 8000:8000/tcp (3000 and 8000 are never published)",
        "caddy: 2019:2019/tcp (Caddy publishes only 80, 443 and 443/udp)",
        "db: 5432:5432/tcp (the database is published on 127.0.0.1 only, and only with postgres_publish_localhost)",
        "web: 127.0.0.1:3000:3000/tcp (3000 and 8000 are never published)",
        "worker: 9100:9100/tcp (only Caddy publishes public ports)",
    ]
    services = dumped(result)
    assert services["caddy"]["ports"] == ("override", [
        {"target": 80, "published": "80", "protocol": "tcp"}, {"target": 443, "published": "443", "protocol": "tcp"}])
    assert services["db"]["ports"] == ("override", [
        {"target": 5432, "published": "5432", "protocol": "tcp", "host_ip": "127.0.0.1"}])
    assert services["api"]["ports"] == ("reset", [])
    assert services["web"]["ports"] == ("reset", [])
    assert services["worker"]["ports"] == ("override", [
        {"target": 9101, "published": "9101", "protocol": "tcp", "host_ip": "127.0.0.1"}])


def test_database_unpublished_when_asked():
    result = layer(config(db={"ports": [port(5432, host_ip="127.0.0.1")]}), template=False, db_on_localhost=False)
    assert dumped(result)["db"]["ports"] == ("reset", [])
    added = layer(config(), template=False)  # no port in the app's file: the tunnel port is added
    assert dumped(added)["db"]["ports"] == ("override", [
        {"target": 5432, "published": "5432", "protocol": "tcp", "host_ip": "127.0.0.1"}])


def test_built_services_get_their_images_tags_and_labels():
    cfg = config(api={"build": {"context": "/a"}}, worker={"build": {"context": "/a"}})
    cfg["x-build-digests"] = {"api": "d1", "worker": "d2"}
    result = layer(cfg, template=False)
    assert result.built == ["api", "worker"]
    services = dumped(result)
    assert services["api"]["image"] == "srq-hpn-api:c0ffee000001"  # its build context's checksum
    assert services["worker"]["image"] == "srq-hpn-worker:abc123def456"  # none given: the release's
    assert services["worker"]["build"] == {"labels": {layout.BUILD_LABEL: "d2", layout.RELEASE_LABEL: "abc123def456"}}


@pytest.mark.parametrize(
    "volumes, target, is_file, source",
    [
        ([{"type": "bind", "source": "/opt/srq-hpn/caddy", "target": "/etc/caddy"}], "/etc/caddy", False,
         "/var/lib/srq-hpn/caddy"),
        ([{"type": "bind", "source": "/opt/srq-hpn/caddy/Caddyfile", "target": "/etc/caddy/Caddyfile"}],
         "/etc/caddy/Caddyfile", True, "/var/lib/srq-hpn/caddy/Caddyfile"),
        ([{"type": "volume", "source": "caddy_data", "target": "/data"}], "/etc/caddy", False,
         "/var/lib/srq-hpn/caddy"),
    ],
)
def test_templated_caddyfile_is_mounted_where_the_repository_mounts_its_own(volumes, target, is_file, source):
    result = layer(config(caddy={"volumes": volumes}))
    assert (result.caddy.target, result.caddy.is_file) == (target, is_file)
    assert dumped(result)["caddy"]["volumes"] == [
        {"type": "bind", "source": source, "target": target, "read_only": True}]


def test_a_private_acme_servers_root_is_mounted_into_caddy():
    cfg = config(caddy={"volumes": [{"type": "bind", "source": "/opt/srq-hpn/caddy", "target": "/etc/caddy"}]})
    result = deploy_layer.build_layer(cfg, app_dir="/opt/srq-hpn", caddy_dir="/var/lib/srq-hpn/caddy",
                                      caddyfile_template=True, db_on_localhost=True, release="abc123def456", tags={},
                                      acme_ca_root="/var/lib/srq-hpn/caddy/acme-ca-root.pem")
    assert dumped(result)["caddy"]["volumes"] == [
        {"type": "bind", "source": "/var/lib/srq-hpn/caddy", "target": "/etc/caddy", "read_only": True},
        {"type": "bind", "source": "/var/lib/srq-hpn/caddy/acme-ca-root.pem", "target": layout.CADDY_ACME_CA_ROOT,
         "read_only": True}]


def test_missing_guide_service_or_host_network_is_refused():
    cfg = config()
    del cfg["services"]["web"]
    with pytest.raises(appspec.ContractError, match="has no service web"):
        layer(cfg)
    with pytest.raises(appspec.ContractError, match="service worker uses network_mode: host"):
        layer(config(worker={"network_mode": "host"}))


def test_exposure_problems_of_a_merged_configuration():
    assert deploy_layer.exposure_problems(config(caddy={"ports": [port(443)]}), True) == []
    assert deploy_layer.exposure_problems(config(db={"ports": [port(5432)]}), True) == [
        "db: 5432:5432/tcp (the database is published on 127.0.0.1 only, and only with postgres_publish_localhost)"]


def test_db_volume_and_container_names():
    cfg = config(db={"volumes": [{"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data"}],
                     "container_name": "srq-hpn-db"})
    cfg["volumes"] = {"pgdata": {"name": "srq-hpn_pgdata"}}
    assert appspec.db_volume(cfg) == "srq-hpn_pgdata"
    assert appspec.container_names(cfg)["db"] == "srq-hpn-db"
    assert appspec.container_names(cfg)["web"] == "srq-hpn-web-1"
    assert appspec.db_volume(config()) is None


def test_pulled_images_are_the_named_ones_the_databases_first():
    base = {"services": {
        "caddy": {"image": "caddy:2"},
        "api": {"build": {"context": "./apps/api"}, "image": "example/api:1"},
        "db": {"image": "postgres:16"},
        "cache": {"image": "redis:${REDIS_TAG:-7}"},
        "worker": {"image": "example/worker:1"},
    }}
    override = {"services": {"worker": {"build": "./worker"}, "caddy": {"image": "caddy:2.8"}, "web": {"build": "."}}}
    assert appspec.pulled_images([base]) == ["postgres:16", "caddy:2", "example/worker:1"]
    assert appspec.pulled_images([base, override]) == ["postgres:16", "caddy:2.8"]
    assert appspec.pulled_images([{"services": {"db": {"image": "postgres:16"}, "db2": {"image": "postgres:16"}}}]) == [
        "postgres:16"]
