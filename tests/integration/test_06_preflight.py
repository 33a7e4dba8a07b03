"""Scenario 6: a bad configuration is rejected before anything on the server changes.
(Failures on the server itself are scenario 15.)"""

from tests.testbed import harness

def test_bad_configuration_changes_nothing(testbed, fresh_server):
    server = fresh_server("preflight")
    settings = {**testbed.settings(), "srq_hpn_domain": "https://example.com/", "postgres_app_user": "App-User",
                "caddy_tsl": "internal"}
    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "-y",
                              env={"POSTGRES_PASSWORD": "changeme"})
    assert run.returncode != 0
    for expected in (
        "srq_hpn_domain must be a bare host name",
        "postgres_app_user must be a PostgreSQL identifier",
        "unknown setting 'caddy_tsl' (did you mean 'caddy_tls'?)",
        "POSTGRES_PASSWORD is a known default",
        "nothing on the server was changed",
    ):
        assert expected in run.output, f"missing {expected!r} in:\n{run.output[-3000:]}"
    assert "Starting operation" not in run.output
    # Refused before pyinfra connected ("[host] Connected"), as pyinfra's own error: no
    # traceback, no file and line.
    assert "] Connected" not in run.output, run.output[-3000:]
    assert "--> pyinfra error: preflight failed for 127.0.0.1:" in run.output
    assert "Traceback" not in run.output and "preflight.py line" not in run.output
    assert server.exec("test -e /opt/srq-hpn", check=False)[0] != 0, "the app directory was created"
    assert server.exec("command -v docker", check=False)[0] != 0, "Docker was installed"
    assert server.exec("test -e /etc/docker", check=False)[0] != 0, "/etc/docker was created"

