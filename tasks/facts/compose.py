"""What Compose resolves for the app's repository: the configuration of the files on the
server (with or without the deploy's layer), and that of a release's files before they
are on the server (given on standard input, in a private directory removed at once).

Quiet questions: a resolved configuration holds the values of .env.production. Those
(every service's environment, build arguments, inline configs and secrets) are dropped
before it is kept; ``x-build-digest`` holds what the builds depend on.
"""

from __future__ import annotations

import base64
import io
import json
import shlex
import tarfile

from tasks import layout
from tasks.commands import compose, compose_files_only, parse_status, quote, status_block
from tasks.digest import sha256
from tasks.external_db import DATABASE_URLS_KEY, database_urls
from tasks.remote import QuietFact, RemoteError, ask_quietly, run

HASHES_MARK = "@@hashes"
ENV_NAME = "srq-hpn.env"  # the staged env file's name (not one of the repository's)


def build_digests(config: dict) -> dict[str, str]:
    """What besides its files decides each image the app builds: its service's build section
    (build arguments included, which hold values of .env.production: only a digest is kept)."""
    return {name: sha256(json.dumps(service["build"], sort_keys=True))[:16]
            for name, service in (config.get("services") or {}).items() if service.get("build")}


def stripped(config: dict) -> dict:
    """A resolved configuration without the values of .env.production (kept: the digests of
    what the builds depend on, and where the database URLs point, computed first)."""
    digests = build_digests(config)
    urls = database_urls(config)  # where the services connect (host and port only, no credentials)
    for service in (config.get("services") or {}).values():
        service.pop("environment", None)
        if isinstance(service.get("build"), dict):
            service["build"].pop("args", None)
    for kind in ("configs", "secrets"):
        for entry in (config.get(kind) or {}).values():
            if isinstance(entry, dict):
                entry.pop("content", None)
                entry.pop("environment", None)
    config["x-build-digests"] = digests
    config[DATABASE_URLS_KEY] = urls
    return config


def _answer(lines: list[str]) -> dict:
    ok, lines = parse_status(lines)
    if not ok:
        return {"ok": False, "error": lines}
    body, hashes = lines, {}
    if HASHES_MARK in lines:
        at = lines.index(HASHES_MARK)
        body, hashes = lines[:at], dict(line.split(" ", 1) for line in lines[at + 1:] if " " in line)
    try:
        config = json.loads("\n".join(body))
    except ValueError:
        return {"ok": False, "error": ["docker compose config printed no JSON"]}
    return {"ok": True, "config": stripped(config), "hashes": hashes}


class ComposeConfig(QuietFact):
    """Returns what Compose resolves in the app directory (``docker compose config
    --format json``), with the deploy's layer or, given ``files``, from those files only:
    ``{"ok": True, "config": {...}, "hashes": {}}`` or ``{"ok": False, "error": [Compose's lines]}``."""

    def command(self, app_dir, files=None):
        args = ("config", "--format", "json")
        return status_block(compose_files_only(app_dir, list(files), *args) if files else compose(app_dir, *args))

    def process(self, output):
        return _answer(list(output))


def compose_config(app_dir: str, files: list[str] | None = None) -> dict:
    """The ComposeConfig answer (quietly; from the run's snapshot when it can)."""
    try:
        return ask_quietly(ComposeConfig, app_dir=app_dir, files=list(files) if files else None)
    except RemoteError as error:
        return {"ok": False, "error": [str(error)]}


def staged(files: dict[str, str]) -> str:
    """Files (name -> text) as one line of standard input: a gzip'd tar, base64 (pure)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def planned_command(app_dir: str, compose_files: list[str], env_file: str | None = None) -> str:
    """The command that resolves staged files as Compose will once they are in the app
    directory: unpacked from standard input into a private directory (removed on exit),
    paths resolved against the app directory; the configuration, then each service's
    config hash (pure; unit-tested). A compose file named by an absolute path, and an
    ``env_file``, are the server's own."""
    files = " ".join(f"-f {shlex.quote(name)}" if name.startswith("/") else f'-f "$tmp"/{shlex.quote(name)}'
                     for name in compose_files)
    env = f"--env-file {shlex.quote(env_file)}" if env_file else f'--env-file "$tmp"/{ENV_NAME}'
    compose_cmd = (f"env -u COMPOSE_FILE -u COMPOSE_PROJECT_NAME -u COMPOSE_PROFILES docker compose "
                   f"--project-directory {shlex.quote(app_dir)} {env} {files}")
    inner = (f"{compose_cmd} config --format json && echo && echo {HASHES_MARK} && "
             f"{compose_cmd} config --hash {quote('*')}")
    # The status block runs in a subshell: its own clean-up trap must not replace this one.
    return ('tmp=$(umask 077 && mktemp -d) && trap \'rm -rf "$tmp"\' EXIT && base64 -d | tar -xz -C "$tmp" && cd / && '
            f"( {status_block(inner)} )")


def planned_config(app_dir: str, files: dict[str, str], compose_files: list[str], env_text: str | None) -> dict:
    """What Compose resolves for a release's files (``files``, with ``compose_files`` in
    Compose's order: relative names are staged files, absolute ones the server's) and env
    file (None: the server's .env.production), before they are in the app directory:
    ``{"ok": True, "config": {...}, "hashes": {"api": "…"}}`` or ``{"ok": False, "error": [...]}``.
    The env file reaches the server on standard input only, and is removed at once."""
    staged_files = {name: files[name] for name in compose_files if not name.startswith("/")}
    if env_text is not None:
        staged_files[ENV_NAME] = env_text
    env_file = None if env_text is not None else f"{app_dir.rstrip('/')}/{layout.ENV_FILE}"
    try:
        lines = run(planned_command(app_dir, compose_files, env_file), secret_output=True, stdin=staged(staged_files))
    except RemoteError as error:
        return {"ok": False, "error": [str(error)]}
    return _answer(lines)
