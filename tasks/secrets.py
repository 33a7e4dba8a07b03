"""The values of .env.production, and where each comes from.

The two database passwords come from the operator's environment (where a secrets
manager injects them), else from the env file already on the server, else they
are generated once. Every other variable the app's compose file asks for comes
from the deploy's settings: the guide's Quick Reference, ``app_env`` for plain
values, and, for the names the operator declares in ``app_secrets`` only, the
operator's environment (else the server's env file). The app's repository never
chooses what the operator's environment gives away: a variable it asks for that
the operator did not declare gets nothing, even when it is exported, and the
deploy says so. The deploy's own secrets (the database passwords, the off-server
copy's password, the webhook URL) only ever fill their own variables. Values stay
in memory: they are never written to the operator's disk and never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pyinfra import host

from pyinfra.api.exceptions import PyinfraError

from tasks.external_db import HOST_VAR, PORT_VAR, ExternalDb
from tasks.settings import DEPLOY_SECRETS, Settings, database_url, generate_password
from tasks.validation import KNOWN_DEFAULT_PASSWORDS, check_secret_characters

PASSWORD_SOURCES = ("the environment", "the server", "generated now")
# Variables the deploy itself derives; every one of the guide's Quick Reference.
QUICK_REFERENCE = (
    "DOMAIN",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_APP_USER",
    "POSTGRES_APP_PASSWORD",
    "DATABASE_URL",
    "DATABASE_URL_ADMIN",
    "NEXT_PUBLIC_API_BASE_URL",
)
# Always written (the others only when the app's files ask for them).
ALWAYS = tuple(name for name in QUICK_REFERENCE if not name.startswith("DATABASE_URL"))
SECRET_QUICK_REFERENCE = {"POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD", "DATABASE_URL", "DATABASE_URL_ADMIN"}


@dataclass(frozen=True)
class Passwords:
    postgres: str
    app: str

    def __repr__(self) -> str:  # never in a traceback or a log line
        return "Passwords(********)"


def choose(name: str, environ: dict, on_server: dict) -> tuple[str, str]:
    """(value, where it came from) for one password (pure; unit-tested)."""
    if environ.get(name):
        return environ[name], PASSWORD_SOURCES[0]
    if on_server.get(name):
        return on_server[name], PASSWORD_SOURCES[1]
    return generate_password(), PASSWORD_SOURCES[2]


def quick_reference(settings: Settings, passwords: Passwords) -> dict[str, str]:
    """The guide's Quick Reference variables, in its order (with an external database, its
    host and port too: the app's compose file builds its URLs from them)."""
    where = (settings.postgres_host, settings.postgres_port) if settings.external_db else ("db", 5432)
    database = ExternalDb.of(settings)
    external = database.env_file_values() if database else {}
    return {
        "DOMAIN": settings.domain,
        "POSTGRES_DB": settings.postgres_db,
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASSWORD": passwords.postgres,
        "POSTGRES_APP_USER": settings.postgres_app_user,
        "POSTGRES_APP_PASSWORD": passwords.app,
        "DATABASE_URL": database_url(settings.postgres_app_user, passwords.app, settings.postgres_db, *where),
        "DATABASE_URL_ADMIN": database_url(settings.postgres_user, passwords.postgres, settings.postgres_db, *where),
        "NEXT_PUBLIC_API_BASE_URL": settings.app_next_public_api_base_url,
        **external,
    }


@dataclass
class Resolved:
    """The variables of .env.production, resolved."""

    values: dict[str, str] = field(default_factory=dict)  # in file order
    secret: set[str] = field(default_factory=set)  # names whose values are never shown
    sources: dict[str, str] = field(default_factory=dict)  # name -> where its value came from
    problems: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Resolved({sorted(self.values)}, ********)"


@dataclass(frozen=True)
class EnvSources:
    """Everything a value of .env.production may come from. Its repr shows no value."""

    settings: Settings
    passwords: Passwords
    on_server: dict

    def __repr__(self) -> str:
        return "EnvSources(********)"

    def changed_passwords(self) -> list[str]:
        """The passwords whose value differs from the server's (all of them on a first deploy)."""
        given = {"POSTGRES_PASSWORD": self.passwords.postgres, "POSTGRES_APP_PASSWORD": self.passwords.app}
        return [name for name, value in given.items() if self.on_server.get(name) != value]

    def resolve(self, needed: dict[str, set[str]], environ: dict | None = None) -> Resolved:
        """Values for the guide's variables and for every variable in ``needed``
        (name -> where the app's files ask for it)."""
        environ = os.environ if environ is None else environ
        fixed = quick_reference(self.settings, self.passwords)
        result = Resolved()
        external = tuple(n for n in (HOST_VAR, PORT_VAR) if n in fixed)  # an external database's
        for name in ALWAYS + tuple(n for n in ("DATABASE_URL", "DATABASE_URL_ADMIN") if n in needed) + external:
            result.values[name] = fixed[name]
            result.sources[name] = "settings"
            if name in SECRET_QUICK_REFERENCE:
                result.secret.add(name)
        for name in sorted(set(needed) - set(result.values)):
            where = ", ".join(sorted(needed[name]))
            if name in self.settings.app_env:
                result.values[name], result.sources[name] = self.settings.app_env[name], "app_env"
                continue
            if name in DEPLOY_SECRETS:
                result.problems.append(
                    f"{name} (asked for by {where}) is the deploy's own secret ({DEPLOY_SECRETS[name]}): it is "
                    "never given to the app. Give the app a variable of its own (set it in app_env, or declare it "
                    "in app_secrets)")
                continue
            if name not in self.settings.app_secrets:
                result.problems.append(undeclared(name, where, environ, self.on_server))
                continue
            if environ.get(name):
                value, source = environ[name], "the environment"
            elif self.on_server.get(name):
                value, source = self.on_server[name], "the server"
            else:
                result.problems.append(
                    f"{name} (asked for by {where}) is declared in app_secrets but has no value: export "
                    f"{name}=... before running pyinfra (the server's .env.production has none either)")
                continue
            bad = check_secret_characters(name, value)
            if value in KNOWN_DEFAULT_PASSWORDS - {""}:
                bad.append(f"{name} is a known default or placeholder")
            if bad:
                result.problems += [f"{problem} (from {source})" for problem in bad]
                continue
            result.values[name], result.sources[name] = value, source
            result.secret.add(name)
        return result

    @staticmethod
    def origins(resolved: Resolved) -> str:
        """Where each of the app's own variables got its value: names only, never a value."""
        described = {"app_env": "app_env", "the environment": "your environment (app_secrets)",
                     "the server": "kept from the server (app_secrets)"}
        parts = [f"{name} from {described.get(source, source)}" for name, source in resolved.sources.items()
                 if source != "settings"]
        return "The app's variables: " + ("; ".join(parts) if parts else "none besides the guide's")


def undeclared(name: str, where: str, environ, on_server: dict) -> str:
    """The problem of a variable the app's files ask for that the operator did not declare."""
    problem = (f"{name} (asked for by {where}) has no value: set it in app_env for a plain value (--data or "
               f"group_data), or declare it in app_secrets and export {name}=... before running pyinfra for a secret")
    if environ.get(name):
        problem += (f". {name} is exported in your environment, but the deploy never copies a variable you did not "
                    "declare: it was not given to the app")
    elif on_server.get(name):
        problem += ". The server's .env.production holds a value from an earlier deploy: declare it in app_secrets to keep it"
    return problem


def resolve(settings: Settings, on_server: dict) -> EnvSources:
    """The two passwords, and the sources of every other value (read at execution)."""
    postgres, postgres_from = choose("POSTGRES_PASSWORD", os.environ, on_server)
    app, app_from = choose("POSTGRES_APP_PASSWORD", os.environ, on_server)
    if settings.behind_edge and app_from != PASSWORD_SOURCES[0]:
        raise PyinfraError(
            f"POSTGRES_APP_PASSWORD is the password of {settings.postgres_app_user}, the role every app server of the "
            "group shares: set it in your environment (from your secrets manager), so that they all give the same one; "
            "a server's own or a generated one would lock the others out. Nothing on the server was changed.")
    if settings.external_db and postgres_from == PASSWORD_SOURCES[2]:
        raise PyinfraError(
            f"POSTGRES_PASSWORD is the password of {settings.postgres_user}, the admin role of the external database "
            f"{settings.postgres_host}: it cannot be generated. Set it in your environment (from your secrets "
            "manager); nothing on the server was changed.")
    host.log(f"POSTGRES_PASSWORD: from {postgres_from}; POSTGRES_APP_PASSWORD: from {app_from}")
    return EnvSources(settings=settings, passwords=Passwords(postgres=postgres, app=app), on_server=on_server)
