"""Settings of the deploy: defaults, validation and derived values.

Pure code: nothing here talks to a server, so every rule is unit-tested.
The defaults live in ``group_data/all.py``; this module only reads them.
"""

from __future__ import annotations

import base64
import difflib
import re
import runpy
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = ROOT / "group_data" / "all.py"

# Host data keys under these prefixes belong to this deploy: unknown ones are typos.
SETTING_PREFIXES = ("srq_hpn_", "postgres_", "caddy_", "docker_", "app_")

# Secrets come from the operator's environment, never from settings.
SECRET_ENV_VARS = ("POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD")

# Values seen in guides, examples and default images: never acceptable as passwords.
KNOWN_DEFAULT_PASSWORDS = {
    "",
    "postgres",
    "password",
    "changeme",
    "change-me",
    "secret",
    "srq_hpn",
    "srq_hpn_app",
    "<generated-superuser-password>",
    "<generated-app-password>",
}
MIN_PASSWORD_LENGTH = 32
MIN_DISTINCT_PASSWORD_CHARS = 12

IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
APP_SOURCES = ("upload", "git")
TLS_MODES = ("letsencrypt", "internal")
INSTALL_METHODS = ("official", "distro")


class SettingsError(ValueError):
    """Raised with every problem of a configuration, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "the configuration has {} problem(s); nothing on the server was changed:\n{}".format(
                len(problems), "\n".join(f"  - {problem}" for problem in problems)
            )
        )


def load_defaults(path: Path = DEFAULTS_FILE) -> dict:
    """Return the settings of group_data/all.py with their default values."""
    namespace = runpy.run_path(str(path))
    return {key: value for key, value in namespace.items() if not key.startswith("_")}


@dataclass(frozen=True)
class Settings:
    """The validated settings of one host, plus its two database passwords."""

    domain: str
    app_dir: str
    verify: bool
    verify_timeout: int
    app_source: str
    app_local_path: str
    app_git_repo: str
    app_git_branch: str
    app_git_deploy_key: str
    api_path: str
    web_path: str
    api_base_image: str
    web_base_image: str
    next_public_api_base_url: str
    postgres_db: str
    postgres_user: str
    postgres_app_user: str
    postgres_image: str
    postgres_publish_localhost: bool
    postgres_healthy_timeout: int
    caddy_image: str
    caddy_tls: str
    caddy_acme_email: str
    caddy_acme_ca: str
    docker_install_method: str
    docker_official_repo_url: str
    docker_log_max_size: str
    docker_log_max_file: int
    docker_live_restore: bool
    docker_registry_mirrors: list = field(default_factory=list)
    docker_insecure_registries: list = field(default_factory=list)

    @classmethod
    def from_data(cls, data: dict) -> Settings:
        return cls(
            domain=data["srq_hpn_domain"],
            app_dir=data["srq_hpn_app_dir"],
            verify=data["srq_hpn_verify"],
            verify_timeout=data["srq_hpn_verify_timeout"],
            app_source=data["srq_hpn_app_source"],
            app_local_path=data["srq_hpn_app_local_path"],
            app_git_repo=data["srq_hpn_app_git_repo"],
            app_git_branch=data["srq_hpn_app_git_branch"],
            app_git_deploy_key=data["srq_hpn_app_git_deploy_key"],
            api_path=data["srq_hpn_api_path"],
            web_path=data["srq_hpn_web_path"],
            api_base_image=data["app_api_base_image"],
            web_base_image=data["app_web_base_image"],
            next_public_api_base_url=data["app_next_public_api_base_url"],
            postgres_db=data["postgres_db"],
            postgres_user=data["postgres_user"],
            postgres_app_user=data["postgres_app_user"],
            postgres_image=data["postgres_image"],
            postgres_publish_localhost=data["postgres_publish_localhost"],
            postgres_healthy_timeout=data["postgres_healthy_timeout"],
            caddy_image=data["caddy_image"],
            caddy_tls=data["caddy_tls"],
            caddy_acme_email=data["caddy_acme_email"],
            caddy_acme_ca=data["caddy_acme_ca"],
            docker_install_method=data["docker_install_method"],
            docker_official_repo_url=data["docker_official_repo_url"],
            docker_log_max_size=data["docker_log_max_size"],
            docker_log_max_file=data["docker_log_max_file"],
            docker_live_restore=data["docker_live_restore"],
            docker_registry_mirrors=list(data["docker_registry_mirrors"]),
            docker_insecure_registries=list(data["docker_insecure_registries"]),
        )

    def local_source_path(self) -> Path:
        return local_path(self.app_local_path)


def local_path(value: str) -> Path:
    """A path on the operator's machine: ~ expanded, relative to this repository."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else ROOT / path


def with_defaults(data: dict, defaults: dict) -> dict:
    """Every setting: the host's value where it has one, else the default."""
    return {**defaults, **{k: v for k, v in data.items() if k in defaults}}


# --- Validation ----------------------------------------------------------------


def check_domain(domain) -> list[str]:
    if not isinstance(domain, str) or not domain:
        return ["srq_hpn_domain (DOMAIN) is required: the host name Caddy serves, e.g. example.com"]
    problems = []
    if "://" in domain or "/" in domain or ":" in domain or any(c.isspace() for c in domain):
        problems.append(
            f"srq_hpn_domain must be a bare host name (no scheme, path, port or spaces), got {domain!r}"
        )
    elif len(domain) > 253 or not all(HOSTNAME_LABEL_RE.match(label) for label in domain.split(".")):
        problems.append(f"srq_hpn_domain is not a valid host name: {domain!r}")
    return problems


def check_password(name: str, value: str) -> list[str]:
    """Rules for a password given by the operator (generated ones pass by construction)."""
    if value in KNOWN_DEFAULT_PASSWORDS or value.lower() in KNOWN_DEFAULT_PASSWORDS:
        return [f"{name} is a known default or placeholder; generate one: openssl rand -base64 32"]
    problems = []
    if len(value) < MIN_PASSWORD_LENGTH:
        problems.append(
            f"{name} is too short ({len(value)} characters, at least {MIN_PASSWORD_LENGTH}); "
            "generate one: openssl rand -base64 32"
        )
    elif len(set(value)) < MIN_DISTINCT_PASSWORD_CHARS:
        problems.append(
            f"{name} does not look random (only {len(set(value))} distinct characters); "
            "generate one: openssl rand -base64 32"
        )
    if any(c.isspace() or c in "'\"\\" for c in value) or not value.isprintable():
        problems.append(f"{name} must not contain spaces, quotes, backslashes or control characters")
    return problems


def check_settings(data: dict, defaults: dict, environ: dict) -> list[str]:
    """Return every problem of a host's settings and secrets, as readable sentences."""
    problems: list[str] = []

    for key in sorted(data):
        if key.startswith(SETTING_PREFIXES) and key not in defaults:
            close = difflib.get_close_matches(key, defaults, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown setting {key!r}{hint}")

    merged = with_defaults(data, defaults)
    type_problems: list[str] = []
    for key, default in defaults.items():
        value = merged[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            type_problems.append(f"{key} must be True or False, got {value!r}")
        elif isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                type_problems.append(f"{key} must be a positive whole number, got {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            type_problems.append(f"{key} must be a string, got {value!r}")
        elif isinstance(default, list) and not (
            isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        ):
            type_problems.append(f"{key} must be a list of strings, got {value!r}")
    if type_problems:  # the rules below need values of the right type
        return problems + type_problems

    problems += check_domain(merged["srq_hpn_domain"])

    if not re.match(r"^/[A-Za-z0-9._/-]+$", merged["srq_hpn_app_dir"]) or merged["srq_hpn_app_dir"].rstrip("/") in (
        "",
        "/etc",
        "/usr",
        "/var",
        "/root",
        "/home",
        "/opt",
    ):
        problems.append(
            "srq_hpn_app_dir must be an absolute path of its own (letters, digits, . _ - /), "
            f"got {merged['srq_hpn_app_dir']!r}"
        )

    names = {}
    for key in ("postgres_db", "postgres_user", "postgres_app_user"):
        if not IDENTIFIER_RE.match(merged[key]):
            problems.append(
                f"{key} must be a PostgreSQL identifier (lower-case letters, digits and _, "
                f"not starting with a digit, at most 63 characters), got {merged[key]!r}"
            )
        names[key] = merged[key]
    if names["postgres_user"] == names["postgres_app_user"]:
        problems.append("postgres_app_user must differ from postgres_user (least privilege)")

    bad_subs = set()
    for sub_key in ("srq_hpn_api_path", "srq_hpn_web_path"):
        sub = merged[sub_key]
        if not sub or sub.startswith("/") or ".." in Path(sub).parts:
            problems.append(f"{sub_key} must be a relative path inside the source, got {sub!r}")
            bad_subs.add(sub_key)

    source = merged["srq_hpn_app_source"]
    if source not in APP_SOURCES:
        problems.append(f"srq_hpn_app_source must be one of {', '.join(APP_SOURCES)}, got {source!r}")
    elif source == "upload":
        path = local_path(merged["srq_hpn_app_local_path"])
        for sub_key in ("srq_hpn_api_path", "srq_hpn_web_path"):
            if sub_key not in bad_subs and not (path / merged[sub_key] / "Dockerfile").is_file():
                problems.append(
                    f"srq_hpn_app_local_path {str(path)!r} has no {merged[sub_key]}/Dockerfile "
                    f"(set srq_hpn_app_local_path to a checkout of the app)"
                )
    elif source == "git":
        if not merged["srq_hpn_app_git_repo"]:
            problems.append("srq_hpn_app_git_repo is required when srq_hpn_app_source is 'git'")
        key_path = merged["srq_hpn_app_git_deploy_key"]
        if key_path and not Path(key_path).expanduser().is_file():
            problems.append(f"srq_hpn_app_git_deploy_key {key_path!r} is not a readable file")

    if merged["caddy_tls"] not in TLS_MODES:
        problems.append(f"caddy_tls must be one of {', '.join(TLS_MODES)}, got {merged['caddy_tls']!r}")
    email = merged["caddy_acme_email"]
    if email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        problems.append(f"caddy_acme_email is not an email address: {email!r}")
    if merged["caddy_acme_ca"] and not merged["caddy_acme_ca"].startswith("https://"):
        problems.append(f"caddy_acme_ca must be an https:// URL, got {merged['caddy_acme_ca']!r}")

    if merged["docker_install_method"] not in INSTALL_METHODS:
        problems.append(
            f"docker_install_method must be one of {', '.join(INSTALL_METHODS)}, "
            f"got {merged['docker_install_method']!r}"
        )
    if not re.match(r"^[0-9]+[kmg]$", merged["docker_log_max_size"]):
        problems.append(f"docker_log_max_size must look like 10m, got {merged['docker_log_max_size']!r}")

    for key in ("postgres_image", "caddy_image", "app_api_base_image", "app_web_base_image"):
        if merged[key] and any(c.isspace() for c in merged[key]):
            problems.append(f"{key} must be an image reference without spaces, got {merged[key]!r}")
    for key in ("postgres_image", "caddy_image"):
        if not merged[key]:
            problems.append(f"{key} must not be empty")

    given = {name: environ[name] for name in SECRET_ENV_VARS if environ.get(name) is not None}
    for name, value in given.items():
        problems += check_password(name, value)
    if len(given) == 2 and given["POSTGRES_PASSWORD"] == given["POSTGRES_APP_PASSWORD"]:
        problems.append("POSTGRES_PASSWORD and POSTGRES_APP_PASSWORD must differ")

    return problems


def validated_settings(data: dict, environ: dict, defaults: dict | None = None) -> Settings:
    """Return the host's Settings, or raise SettingsError naming every problem."""
    defaults = load_defaults() if defaults is None else defaults
    problems = check_settings(data, defaults, environ)
    if problems:
        raise SettingsError(problems)
    return Settings.from_data(with_defaults(data, defaults))


# --- Secrets and derived values ------------------------------------------------


def generate_password() -> str:
    """32 random bytes, base64-encoded: the strength of `openssl rand -base64 32`."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def database_url(user: str, password: str, db: str, host: str = "db", port: int = 5432) -> str:
    """A postgresql:// URL with the password percent-encoded (base64 has / + =)."""
    return f"postgresql://{user}:{quote(password, safe='')}@{host}:{port}/{db}"
