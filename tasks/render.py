"""Pure builders: settings in, exact file text or archive bytes out.

Nothing here touches a server; the unit tests compare the output directly.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tasks.settings import ROOT, Settings, database_url

TEMPLATES = ROOT / "templates"
MANAGED_NOTICE = "Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy."
MASK = "********"

# Never shipped to the server in an uploaded source archive.
SOURCE_EXCLUDES = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".next"}

_jinja = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def render_template(name: str, **context) -> str:
    return _jinja.get_template(name).render(managed_notice=MANAGED_NOTICE, **context)


@dataclass(frozen=True)
class Passwords:
    postgres: str
    app: str

    def __repr__(self) -> str:  # never in a traceback or a log line
        return "Passwords(********)"


def env_file(settings: Settings, passwords: Passwords) -> str:
    """The text of .env.production, with every variable of the guide's Quick Reference."""
    return render_template(
        "env.production.j2",
        domain=settings.domain,
        postgres_db=settings.postgres_db,
        postgres_user=settings.postgres_user,
        postgres_password=passwords.postgres,
        postgres_app_user=settings.postgres_app_user,
        postgres_app_password=passwords.app,
        database_url=database_url(settings.postgres_app_user, passwords.app, settings.postgres_db),
        database_url_admin=database_url(settings.postgres_user, passwords.postgres, settings.postgres_db),
        next_public_api_base_url=settings.next_public_api_base_url,
    )


def masked_env_file(settings: Settings) -> str:
    """The env file as it may be shown to a person: every secret replaced by a mask."""
    return env_file(settings, Passwords(MASK, MASK)).replace(quote(MASK, safe=""), MASK)


def parse_env_file(text: str) -> dict[str, str]:
    """Read KEY=value lines of an env file as written by env_file() (quotes removed)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def caddyfile(settings: Settings) -> str:
    global_options = []
    if settings.caddy_acme_email:
        global_options.append(f"email {settings.caddy_acme_email}")
    if settings.caddy_acme_ca:
        global_options.append(f"acme_ca {settings.caddy_acme_ca}")
    return render_template(
        "caddy/Caddyfile.j2",
        global_options=global_options,
        tls_internal=settings.caddy_tls == "internal",
    )


def compose_file(settings: Settings) -> str:
    return render_template(
        "compose.yml.j2",
        app_dir=settings.app_dir,
        caddy_image=settings.caddy_image,
        postgres_image=settings.postgres_image,
        api_path=settings.api_path,
        web_path=settings.web_path,
        api_base_image=settings.api_base_image,
        web_base_image=settings.web_base_image,
        postgres_publish_localhost=settings.postgres_publish_localhost,
    )


def init_script() -> str:
    return (TEMPLATES / "db" / "init" / "01-create-app-user.sh").read_text()


def daemon_json(settings: Settings) -> str:
    """/etc/docker/daemon.json: the settings dict serialised."""
    config: dict = {
        "log-driver": "json-file",
        "log-opts": {
            "max-size": settings.docker_log_max_size,
            "max-file": str(settings.docker_log_max_file),
        },
        "live-restore": settings.docker_live_restore,
    }
    if settings.docker_registry_mirrors:
        config["registry-mirrors"] = list(settings.docker_registry_mirrors)
    if settings.docker_insecure_registries:
        config["insecure-registries"] = list(settings.docker_insecure_registries)
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _source_files(root: Path):
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in SOURCE_EXCLUDES for part in relative.parts):
            continue
        if path.is_file() and not path.is_symlink():
            yield relative, path


def source_archive(root: Path) -> bytes:
    """A reproducible .tar.gz of a local checkout: same files, same bytes.

    Owners, times and gzip headers are fixed so the archive's checksum changes
    only when a file's content, name or executable bit does.
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative, path in _source_files(root):
            info = tarfile.TarInfo(str(relative))
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def sha256(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()
