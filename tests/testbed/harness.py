"""The testbed, in the words of the domain: a registry holding the stand-in images,
"fresh VPS" server containers reachable over SSH, the real pyinfra CLI run against
them, and the checks an operator would make from outside (HTTPS with a verified
certificate, the database through an SSH tunnel).

One module per job; this one gathers their public names for the scenarios, the
sandbox and the benchmarks:

- base: names, labels, Docker access;  servers: the "fresh VPS" containers;
- bed: network, registry (Docker Hub mirror), stand-ins;  cli: the real pyinfra CLI;
- web: HTTP(S) checks from outside;  tunnel: the database over SSH;
- diagnostics: what explains a failure;  cleanup: removal by label.
"""

from tests.testbed.base import (
    DOMAIN,
    LOOPBACK,
    REGISTRY_HOST,
    REGISTRY_MIRROR,
    REPO_ROOT,
    SAMPLE_APP,
    SANDBOX_LABEL,
    STAND_INS,
    VARIANT_APP,
    TestbedError,
    docker_available,
)
from tests.testbed.bed import Testbed, testbed_settings
from tests.testbed.cleanup import sweep
from tests.testbed.cli import PyinfraRun, describe_run, pyinfra_command, run_pyinfra
from tests.testbed.diagnostics import dump_diagnostics
from tests.testbed.servers import Server, generate_ssh_key, start_server
from tests.testbed.tunnel import db_tunnel
from tests.testbed.web import HttpResponse, caddy_root_ca, http_get, https_get

__all__ = [
    "DOMAIN", "LOOPBACK", "REGISTRY_HOST", "REGISTRY_MIRROR", "REPO_ROOT", "SAMPLE_APP", "SANDBOX_LABEL",
    "STAND_INS", "VARIANT_APP", "HttpResponse", "PyinfraRun", "Server", "Testbed", "TestbedError",
    "caddy_root_ca", "db_tunnel", "describe_run", "docker_available", "dump_diagnostics", "generate_ssh_key",
    "http_get", "https_get", "pyinfra_command", "run_pyinfra", "start_server", "sweep", "testbed_settings",
]
