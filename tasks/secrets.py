"""Step 3: the two database passwords.

Each comes from the operator's environment (where a secrets manager injects it),
else from the env file already on the server, else it is generated once. The
values stay in memory: they are never written to the operator's disk and never
printed (the server's copy is read with output logging off, at any verbosity).
"""

from __future__ import annotations

import os
import shlex

from pyinfra import host
from pyinfra.api import StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments

from tasks.facts import ENV_FILE
from tasks.render import Passwords, parse_env_file
from tasks.settings import Settings, generate_password

SOURCES = ("the environment", "the server", "generated now")


def _read_private_file(path: str) -> str:
    """The content of a root-only file on the server, read without logging it."""
    global_arguments, _ = pop_global_arguments(host.state, host, {})
    connector_arguments = {k: global_arguments[k] for k in CONNECTOR_ARGUMENT_KEYS if k in global_arguments}
    quoted = shlex.quote(path)
    ok, output = host.run_shell_command(
        StringCommand(f"test ! -e {quoted} || cat {quoted}"),
        print_output=False,
        print_input=False,
        **connector_arguments,
    )
    if not ok:
        raise OSError(f"could not read {path} on {host.name}: {' '.join(output.stderr_lines)[:200]}")
    return "\n".join(output.stdout_lines)


def choose(name: str, environ: dict, on_server: dict) -> tuple[str, str]:
    """(value, where it came from) for one password (pure; unit-tested)."""
    if environ.get(name):
        return environ[name], SOURCES[0]
    if on_server.get(name):
        return on_server[name], SOURCES[1]
    return generate_password(), SOURCES[2]


def resolve(settings: Settings) -> Passwords:
    on_server = parse_env_file(_read_private_file(f"{settings.app_dir}/{ENV_FILE}"))
    postgres, postgres_from = choose("POSTGRES_PASSWORD", os.environ, on_server)
    app, app_from = choose("POSTGRES_APP_PASSWORD", os.environ, on_server)
    host.log(f"POSTGRES_PASSWORD: from {postgres_from}; POSTGRES_APP_PASSWORD: from {app_from}")
    return Passwords(postgres=postgres, app=app)
