"""The rules a host's settings and secrets must follow, one check per section.

Pure code, unit-tested: every problem is a sentence naming the setting and the fix,
and validated_settings reports them all at once, before anything on the server changes.
"""

from __future__ import annotations

import difflib
import re
import ssl
from pathlib import Path

from tasks.backup_settings import check_backups, check_recovery
from tasks.hostkeys import check_host_key
from tasks.layout import own_directory
from tasks.external_db import check_external_db
from tasks.group import check_role
from tasks.settings import (
    DEPLOY_SECRETS,
    MONITOR_INTERVAL_RANGE,
    OFFSITE_PASSWORD_ENV,
    PASSWORD_ENV_VARS,
    SETTING_PREFIXES,
    WEBHOOK_ENV_VAR,
    Settings,
    load_defaults,
    local_path,
    with_defaults,
)

# Values seen in guides, examples and default images: never acceptable as secrets.
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
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# A host name or address as it may appear in a URL (no leading dash: never an option).
_HOST = r"(?![-.])[A-Za-z0-9.-]{1,253}"
_PORT = r"(?::[0-9]{1,5})?"
# A URL path: unreserved characters and percent-escapes only (no quote, space, brace or newline).
_PATH = r"(?:/[A-Za-z0-9._~%/+-]*)?"
HTTPS_URL_RE = re.compile(rf"^https://{_HOST}{_PORT}{_PATH}$")
HTTP_URL_RE = re.compile(rf"^https?://{_HOST}{_PORT}{_PATH}$")
# NEXT_PUBLIC_API_BASE_URL: empty (relative /api/* via Caddy), a URL, or an absolute path.
API_BASE_URL_RE = re.compile(rf"^(?:https?://{_HOST}{_PORT})?{_PATH}$")
# The log collector: a systemd-journal-remote over plain HTTP, host and port only
# (systemd-journal-upload adds /upload itself).
LOG_SHIPPING_URL_RE = re.compile(rf"^http://{_HOST}{_PORT}$")
REGISTRY_RE = re.compile(rf"^{_HOST}{_PORT}$|^[0-9.]+/[0-9]{{1,2}}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@(?![-.])[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
# The git repository: HTTPS, SSH (ssh://, or scp-like user@host:path), or a path on the server.
GIT_HTTPS_RE = re.compile(rf"^https://(?P<host>{_HOST}){_PORT}/[A-Za-z0-9._~%/+-]+$")
GIT_SSH_URL_RE = re.compile(
    rf"^ssh://(?:[A-Za-z0-9._-]+@)?(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?/[A-Za-z0-9._~%/+-]+$")
GIT_SCP_RE = re.compile(rf"^(?:[A-Za-z0-9._-]+@)?(?P<host>{_HOST}):(?!-)[A-Za-z0-9._~%/+-]+$")
GIT_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]+$")
# A branch as `git check-ref-format --branch` takes it (the common rules).
BRANCH_RE = re.compile(r"^(?![-./])(?!.*\.\.)(?!.*//)(?!.*/\.)(?!.*@\{)[A-Za-z0-9._/+-]{1,200}(?<![./])(?<!\.lock)$")
# The databases of PostgreSQL itself: a restore connects to one of them while it swaps.
RESERVED_DATABASES = ("postgres", "template0", "template1")
APP_SOURCES = ("upload", "git")
TLS_MODES = ("letsencrypt", "internal")
INSTALL_METHODS = ("official", "distro")
CADDYFILE_MODES = ("template", "repository")


class SettingsError(ValueError):
    """Raised with every problem of a configuration, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "the configuration has {} problem(s); nothing on the server was changed:\n{}".format(
                len(problems), "\n".join(f"  - {problem}" for problem in problems)
            )
        )


def check_unknown(data: dict, defaults: dict) -> list[str]:
    problems = []
    for key in sorted(data):
        if key.startswith(SETTING_PREFIXES) and key not in defaults:
            close = difflib.get_close_matches(key, defaults, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown setting {key!r}{hint}")
    return problems


def check_types(merged: dict, defaults: dict) -> list[str]:
    """Each value has its default's type (the other rules rely on it)."""
    problems = []
    for key, default in defaults.items():
        value = merged[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            problems.append(f"{key} must be True or False, got {value!r}")
        elif isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (value == 0 and default > 0):
                problems.append(f"{key} must be a {'positive ' if default > 0 else ''}whole number, got {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            problems.append(f"{key} must be a string, got {value!r}")
        elif isinstance(default, list) and not (
            isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        ):
            problems.append(f"{key} must be a list of strings, got {value!r}")
        elif isinstance(default, dict) and not (
            isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            problems.append(f"{key} must be a dict of strings, got {value!r}")
    return problems


def check_domain(domain) -> list[str]:
    if not isinstance(domain, str) or not domain:
        return ["srq_hpn_domain (DOMAIN) is required: the host name Caddy serves, e.g. example.com"]
    problems = []
    if "://" in domain or "/" in domain or ":" in domain or any(c.isspace() for c in domain):
        problems.append(
            f"srq_hpn_domain must be a bare host name (no scheme, path, port or spaces), got {domain!r}"
        )
    elif len(domain) > 253 or not all(HOSTNAME_LABEL_RE.fullmatch(label) for label in domain.split(".")):
        problems.append(f"srq_hpn_domain is not a valid host name: {domain!r}")
    return problems


def check_directories(merged: dict) -> list[str]:
    problems = []
    for key in ("srq_hpn_app_dir", "srq_hpn_state_dir"):
        value = merged[key]
        if not own_directory(value):
            problems.append(
                f"{key} must be an absolute path of its own (letters, digits, . _ - /), got {value!r}"
            )
    app, state = (merged[k].rstrip("/") + "/" for k in ("srq_hpn_app_dir", "srq_hpn_state_dir"))
    if not problems and (app.startswith(state) or state.startswith(app)):
        problems.append("srq_hpn_state_dir must be outside srq_hpn_app_dir (the app's checkout), and not contain it")
    return problems


def check_database(merged: dict) -> list[str]:
    problems = []
    for key in ("postgres_db", "postgres_user", "postgres_app_user"):
        if not IDENTIFIER_RE.fullmatch(merged[key]):
            problems.append(
                f"{key} must be a PostgreSQL identifier (lower-case letters, digits and _, "
                f"not starting with a digit, at most 63 characters), got {merged[key]!r}"
            )
    if merged["postgres_user"] == merged["postgres_app_user"]:
        problems.append("postgres_app_user must differ from postgres_user (least privilege)")
    if merged["postgres_db"] in RESERVED_DATABASES:
        problems.append(f"postgres_db must not be one of PostgreSQL's own databases ({', '.join(RESERVED_DATABASES)}), "
                        f"got {merged['postgres_db']!r}")
    for key in ("postgres_user", "postgres_app_user"):
        role = merged[key]
        if role == "public" or role.startswith("pg_") or (key == "postgres_app_user" and role == "postgres"):
            problems.append(f"{key} must not be a name PostgreSQL reserves (public, pg_*, postgres for the app role), "
                            f"got {role!r}")
    return problems


def one_of(merged: dict, key: str, choices: tuple[str, ...]) -> list[str]:
    """The problem of a setting that takes one of a few words."""
    if merged[key] in choices:
        return []
    return [f"{key} must be one of {', '.join(choices)}, got {merged[key]!r}"]


def git_ssh_host(repository: str) -> tuple[str, int] | None:
    """The SSH server (host, port) of a git repository URL, or None when it is not reached over SSH."""
    match = GIT_SSH_URL_RE.fullmatch(repository)
    if match:
        return match["host"], int(match["port"] or 22)
    match = GIT_SCP_RE.fullmatch(repository)
    return (match["host"], 22) if match and "://" not in repository else None


def check_git_repository(repository: str) -> list[str]:
    """The repository URL reaches root's command line and .git/config on the server."""
    if "://" in repository and "@" in repository.split("://", 1)[1].split("/", 1)[0] and repository.startswith("https"):
        return ["srq_hpn_app_git_repo must not hold credentials (user:token@): they would be printed, on root's "
                "command line and in .git/config on the server. Use an SSH URL with srq_hpn_app_git_deploy_key "
                "(a read-only deploy key)"]
    if GIT_HTTPS_RE.fullmatch(repository) or GIT_PATH_RE.fullmatch(repository) or git_ssh_host(repository):
        return []
    return [f"srq_hpn_app_git_repo must be an https:// URL, an SSH URL (ssh://[user@]host[:port]/path or "
            f"user@host:path) or an absolute path on the server, with letters, digits and . _ ~ % / + - only; "
            f"got {repository!r}"]


def check_source(merged: dict) -> list[str]:
    """Where the app comes from (the content of an uploaded checkout is checked in
    tasks.appspec, against the contract)."""
    problems = one_of(merged, "srq_hpn_app_source", APP_SOURCES)
    source = merged["srq_hpn_app_source"]
    problems += check_host_key("srq_hpn_app_git_host_key", merged["srq_hpn_app_git_host_key"])
    if source == "upload":
        path = local_path(merged["srq_hpn_app_local_path"])
        if not path.is_dir():
            problems.append(f"srq_hpn_app_local_path {str(path)!r} is not a directory (a checkout of the app)")
    elif source == "git":
        repository = merged["srq_hpn_app_git_repo"]
        if not repository:
            problems.append("srq_hpn_app_git_repo is required when srq_hpn_app_source is 'git'")
        else:
            problems += check_git_repository(repository)
        if not BRANCH_RE.fullmatch(merged["srq_hpn_app_git_branch"]):
            problems.append(f"srq_hpn_app_git_branch is not a branch name (letters, digits, . _ / + -, not starting "
                            f"with - . or /): {merged['srq_hpn_app_git_branch']!r}")
        key_path = merged["srq_hpn_app_git_deploy_key"]
        if key_path and not Path(key_path).expanduser().is_file():
            problems.append(f"srq_hpn_app_git_deploy_key {key_path!r} is not a readable file")
        if (repository and git_ssh_host(repository) and not merged["srq_hpn_app_git_host_key"]
                and not merged["srq_hpn_app_git_accept_new_host_key"]):
            host, _port = git_ssh_host(repository)
            problems.append(
                f"srq_hpn_app_git_host_key is required for an SSH repository ({host}): the server must know the git "
                "server's key before it runs the code it serves. Set it to the key (ssh-keyscan "
                f"{host}, checked against the git host's published fingerprints), or set "
                "srq_hpn_app_git_accept_new_host_key = True to trust the key shown at the first connection")
    return problems


def check_app(merged: dict) -> list[str]:
    problems = one_of(merged, "srq_hpn_caddyfile", CADDYFILE_MODES)
    for name, value in merged["app_env"].items():
        if not ENV_NAME_RE.fullmatch(name):
            problems.append(f"app_env: {name!r} is not an environment variable name")
        elif any(c in value for c in "'\n\r") or not value.isprintable():
            problems.append(f"app_env: the value of {name} must not contain single quotes or control characters")
    for name in merged["app_secrets"]:
        if not ENV_NAME_RE.fullmatch(name):
            problems.append(f"app_secrets: {name!r} is not an environment variable name")
        elif name in DEPLOY_SECRETS:
            problems.append(f"app_secrets: {name} is the deploy's own secret ({DEPLOY_SECRETS[name]}), never given to "
                            "the app; give the app a variable of its own")
        elif name in merged["app_env"]:
            problems.append(f"app_secrets: {name} is also in app_env; a variable is either plain (app_env) or secret")
    url = merged["app_next_public_api_base_url"]
    if not API_BASE_URL_RE.fullmatch(url):
        problems.append("app_next_public_api_base_url must be empty (relative /api/* via Caddy), an http(s):// URL "
                        f"or an absolute path, with letters, digits and . _ ~ % / + - only; got {url!r}")
    return problems


def check_caddy(merged: dict) -> list[str]:
    problems = one_of(merged, "caddy_tls", TLS_MODES)
    if merged["srq_hpn_caddyfile"] == "repository":
        for key in ("caddy_acme_email", "caddy_acme_ca", "caddy_acme_ca_root"):
            if merged[key]:
                problems.append(f"{key} only applies to the deploy's Caddyfile (srq_hpn_caddyfile = 'template'); "
                                "with the repository's own Caddyfile, set it there (Caddy's global options)")
    email = merged["caddy_acme_email"]
    if email and not EMAIL_RE.fullmatch(email):
        problems.append(f"caddy_acme_email is not an email address (letters, digits, . _ % + - @): {email!r}")
    if merged["caddy_acme_ca"] and not HTTPS_URL_RE.fullmatch(merged["caddy_acme_ca"]):
        problems.append("caddy_acme_ca must be an https:// URL (the ACME directory), with letters, digits and "
                        f". _ ~ % / + - only; got {merged['caddy_acme_ca']!r}")
    if merged["caddy_acme_ca_root"]:
        problems += check_acme_ca_root(merged)
    return problems


def check_acme_ca_root(merged: dict) -> list[str]:
    """The private ACME server's root certificate(s): a readable PEM file of certificates
    only (a private key never leaves this machine by mistake), for an ACME server of one's own."""
    value = merged["caddy_acme_ca_root"]
    if merged["caddy_tls"] != "letsencrypt" or not merged["caddy_acme_ca"]:
        return ["caddy_acme_ca_root is the root of a private ACME server: it needs caddy_tls = 'letsencrypt' and "
                "caddy_acme_ca (that server's directory URL)"]
    path = local_path(value)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        return [f"caddy_acme_ca_root {str(path)!r} is not a readable text file ({type(error).__name__})"]
    if "PRIVATE KEY" in text:
        return [f"caddy_acme_ca_root {str(path)!r} holds a private key: give the root certificate(s) only"]
    if "-----BEGIN CERTIFICATE-----" not in text:
        return [f"caddy_acme_ca_root {str(path)!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"]
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as error:
        return [f"caddy_acme_ca_root {str(path)!r} holds a certificate that cannot be read: {error}"]
    return []


def check_docker(merged: dict) -> list[str]:
    problems = one_of(merged, "docker_install_method", INSTALL_METHODS)
    if not re.fullmatch(r"^[0-9]+[kmg]$", merged["docker_log_max_size"]):
        problems.append(f"docker_log_max_size must look like 10m, got {merged['docker_log_max_size']!r}")
    if not HTTPS_URL_RE.fullmatch(merged["docker_official_repo_url"]):
        problems.append("docker_official_repo_url must be an https:// URL (apt trusts the signing key fetched from "
                        f"it), got {merged['docker_official_repo_url']!r}")
    for mirror in merged["docker_registry_mirrors"]:
        if not HTTP_URL_RE.fullmatch(mirror):
            problems.append(f"docker_registry_mirrors: {mirror!r} is not an http(s):// URL")
    for registry in merged["docker_insecure_registries"]:
        if not REGISTRY_RE.fullmatch(registry):
            problems.append(f"docker_insecure_registries: {registry!r} is not host[:port] or an IPv4 CIDR")
    return problems


def check_monitor(merged: dict) -> list[str]:
    low, high = MONITOR_INTERVAL_RANGE
    if not low <= merged["monitor_interval"] <= high:
        return [f"monitor_interval must be between {low} and {high} seconds, got {merged['monitor_interval']!r}"]
    return []


def check_logs(merged: dict) -> list[str]:
    """The log collector's URL: http://host[:port], nothing else (it reaches a systemd
    configuration file on the server; a user or password in it would be printed)."""
    url = merged["log_shipping_url"]
    if not url or LOG_SHIPPING_URL_RE.fullmatch(url):
        return []
    shown = "" if "@" in url else f"; got {url!r}"  # never echo what may be a password
    if url.startswith("https://"):
        return ["log_shipping_url: https is not offered (systemd-journal-upload over https needs a client "
                "certificate and key on the server, which this deploy does not install); give http://host[:port] "
                f"of a collector on a private network{shown}"]
    return ["log_shipping_url must be http://host[:port] of a systemd-journal-remote collector (port 19532 by "
            f"default): letters, digits, . and - in the host, no path, user or password{shown}"]


def check_webhook(environ: dict) -> list[str]:
    """The monitor's webhook URL, when given (it may hold a token: never echoed)."""
    url = environ.get(WEBHOOK_ENV_VAR)
    if not url:
        return []
    if not re.match(r"^https?://[^/?#\s]+", url) or check_secret_characters(WEBHOOK_ENV_VAR, url):
        return [f"{WEBHOOK_ENV_VAR} must be an http:// or https:// URL without spaces, quotes or backslashes"]
    return []


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
    problems += check_secret_characters(name, value)
    return problems


def check_secret_characters(name: str, value: str) -> list[str]:
    """What every secret must avoid to sit safely in .env.production (and in a shell)."""
    if any(c.isspace() or c in "'\"\\" for c in value) or not value.isprintable():
        return [f"{name} must not contain spaces, quotes, backslashes or control characters"]
    return []


def check_passwords(environ: dict) -> list[str]:
    given = {name: environ[name] for name in PASSWORD_ENV_VARS if environ.get(name) is not None}
    problems = []
    for name, value in given.items():
        problems += check_password(name, value)
    if len(given) == 2 and given["POSTGRES_PASSWORD"] == given["POSTGRES_APP_PASSWORD"]:
        problems.append("POSTGRES_PASSWORD and POSTGRES_APP_PASSWORD must differ")
    if environ.get(OFFSITE_PASSWORD_ENV) is not None:
        problems += check_password(OFFSITE_PASSWORD_ENV, environ[OFFSITE_PASSWORD_ENV])
    return problems


def check_settings(data: dict, defaults: dict, environ: dict) -> list[str]:
    """Return every problem of a host's settings and secrets, as readable sentences."""
    problems = check_unknown(data, defaults)
    merged = with_defaults(data, defaults)
    type_problems = check_types(merged, defaults)
    if type_problems:  # the rules below need values of the right type
        return problems + type_problems
    for check in (check_directories, check_database, check_source, check_app, check_caddy, check_docker,
                  check_backups, check_recovery, check_monitor, check_logs):
        problems += check(merged)
    problems += check_external_db(merged, read_file=lambda path: local_path(path).read_text())
    problems += check_role(merged)
    return check_domain(merged["srq_hpn_domain"]) + problems + check_passwords(environ) + check_webhook(environ)


def validated_settings(data: dict, environ: dict, defaults: dict | None = None) -> Settings:
    """Return the host's Settings, or raise SettingsError naming every problem."""
    defaults = load_defaults() if defaults is None else defaults
    problems = check_settings(data, defaults, environ)
    if problems:
        raise SettingsError(problems)
    return Settings.from_data(with_defaults(data, defaults))
