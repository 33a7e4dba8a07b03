"""The sandbox's settings: the testbed's, the operator's own app and settings, and what
the sandbox itself needs (pure)."""

from tests.testbed import harness
from tests.testbed.sandbox import parse_data, sandbox_settings


def test_the_default_sandbox_deploys_the_sample_app_with_the_stand_ins():
    settings = sandbox_settings()
    assert settings["srq_hpn_app_local_path"] == str(harness.SAMPLE_APP)
    assert settings["docker_registry_mirrors"] == [harness.REGISTRY_MIRROR]
    assert settings["caddy_tls"] == "internal" and settings["srq_hpn_domain"] == harness.DOMAIN


def test_the_operators_own_app_and_settings(tmp_path):
    app = tmp_path / "srq-hpn"
    app.mkdir()
    own = tmp_path / "production.py"
    own.write_text('srq_hpn_domain = "shop.example.org"\ncaddy_tls = "letsencrypt"\n'
                   'app_env = {"SITE_NAME": "Shop"}\napp_secrets = ["SESSION_SECRET"]\nimport os\n_private = 1\n')
    settings = sandbox_settings(app, own, parse_data(["srq_hpn_verify_timeout=300", "postgres_publish_localhost=False"]))
    assert settings["srq_hpn_app_local_path"] == str(app.resolve())
    assert settings["srq_hpn_domain"] == "shop.example.org"
    assert settings["app_env"] == {"SITE_NAME": "Shop"} and settings["app_secrets"] == ["SESSION_SECRET"]
    assert settings["srq_hpn_verify_timeout"] == 300 and settings["postgres_publish_localhost"] is False
    assert settings["caddy_tls"] == "internal"  # no public ACME server reaches a sandbox
    assert "os" not in settings and "_private" not in settings


def test_real_images_come_from_docker_hub():
    settings = sandbox_settings(real_images=True)
    assert "docker_registry_mirrors" not in settings and "docker_insecure_registries" not in settings


def test_data_values_read_as_pyinfra_reads_them():
    assert parse_data(["a=1", "b=true", "c=[\"x\"]", "d=text", "e=False"]) == {
        "a": 1, "b": True, "c": ["x"], "d": "text", "e": False}
