"""Command builders: settings in, the exact shell text out (pure; unit-tested).

Operations and facts yield these; nothing here runs anything.
"""

from __future__ import annotations

import json
import shlex

from pyinfra.api import StringCommand

from tasks import layout


def quote(*words: str) -> str:
    return " ".join(shlex.quote(str(word)) for word in words)


def shell(*words: str) -> StringCommand:
    """A command of separate words, each quoted for the shell (pyinfra joins the words of a
    StringCommand as they are)."""
    return StringCommand(quote(*words))


def compose(app_dir: str, *args: str) -> str:
    """A docker compose command run as the guide runs it: in the app directory,
    with ``--env-file .env.production`` (which also names the deploy's layer)."""
    return f"cd {shlex.quote(app_dir)} && " + quote("docker", "compose", "--env-file", layout.ENV_FILE, *args)


def compose_files_only(app_dir: str, files: list[str], *args: str) -> str:
    """docker compose on the repository's own files only (without the deploy's layer)."""
    words = ["docker", "compose", "--env-file", layout.ENV_FILE]
    for name in files:
        words += ["-f", name]
    return f"cd {shlex.quote(app_dir)} && " + quote(*words, *args)


def configured(key: str, default: str, given=None, source: str = layout.DEPLOY_ENV) -> str:
    """Shell text giving one of the stack's values for a fact asked by hand: the one given,
    else the server's (``KEY=`` in ``source``, a file the deploy wrote: deploy.env, or
    stack.env with ``source=STACK_ENV``), else ``default`` (a server not deployed yet)."""
    if given not in (None, ""):
        return shlex.quote(str(given))
    return (f"\"$(sed -n 's/^{key}=//p' {source} 2>/dev/null | tr -d \"'\" | grep . || echo {shlex.quote(default)})\"")


# stack.env, in the server's state directory: what the deploy learnt from the app's compose file.
STACK_ENV = f"\"{configured('STATE_DIR', layout.STATE_DIR)}/stack.env\""


def program(name: str, *args: str) -> str:
    """One of the deploy's server programs (installed in LIB_DIR)."""
    return quote(f"{layout.LIB_DIR}/{name}", *args)


def if_installed(name: str, command: str, otherwise: str) -> str:
    """Run a server program when it is installed (a fact asked before the first deploy
    runs on a bare server), else print `otherwise`."""
    path = shlex.quote(f"{layout.LIB_DIR}/{name}")
    return f"if [ -x {path} ] && [ -r {layout.DEPLOY_ENV} ]; then {command}; else echo {shlex.quote(otherwise)}; fi"


def status_block(command: str) -> str:
    """Run `command`; print "ok" then its stdout, or "error" then its stderr (exit 0 either way,
    so a failure is data that an operation can explain, not a fact that cannot load)."""
    return (
        'err=$(mktemp); trap \'rm -f "$err"\' EXIT; '
        f'if out=$({{ {command}; }} 2>"$err"); then echo ok; printf "%s\\n" "$out"; '
        'else echo error; cat "$err"; printf "%s\\n" "$out" | tail -n 20; fi'
    )


def parse_status(output) -> tuple[bool, list[str]]:
    lines = list(output)
    if not lines:
        return False, ["(no output)"]
    return lines[0] == "ok", lines[1:]


def json_lines(output) -> list[dict]:
    """The JSON objects of a command's output, one a line; any other line is skipped."""
    records = []
    for line in output:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
