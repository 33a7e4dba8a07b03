"""Step 1: validate the whole configuration before anything on the server changes.

Every problem is listed at once: the settings, the secrets given in the
environment, the local checkout against the app contract (its compose file, the
guide's services), and every variable its compose file needs that nothing
provides (the server's current env file is read, never changed, to know which
values it already holds). In git mode the checkout's own files are checked on
the server once fetched, before anything is built, stopped or started.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gevent
from pyinfra import context, host, logger
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.state import BaseStateCallback

from tasks import acme, appspec, facts, group, layout, snapshot
from tasks.backup_settings import restore_problems
from tasks.external_db import external_contract_error, literal_hosts
from tasks.remote import RemoteError, run
from tasks.render import parse_env_file
from tasks.secrets import EnvSources, Passwords, Resolved
from tasks.settings import OFFSITE_PASSWORD_ENV, Settings, load_defaults, with_defaults
from tasks.sourcetree import SourceError, Upload
from tasks.validation import SettingsError, check_settings


class PreflightError(PyinfraError):
    """The configuration is invalid; the message lists every problem."""


@dataclass(frozen=True)
class Deployment:
    """The checked input of one run on one host."""

    settings: Settings
    upload: Upload | None  # the local checkout, in upload mode
    on_server: dict  # the values of the server's current .env.production (never shown)
    backups_on: str = ""  # an app server of a group: the one that takes the scheduled backups ("" here)

    def __repr__(self) -> str:
        return f"Deployment({self.settings.domain}, ********)"

    @property
    def pulled_images(self) -> list[str]:
        """The images the uploaded checkout's compose files name (the database's first);
        none in git mode, where the files are read on the server only; the edge's Caddy."""
        if self.settings.edge:
            return [layout.EDGE_IMAGE]
        if self.upload is None:
            return []
        return appspec.pulled_images(list(compose_documents(self.upload).values()))


def compose_texts(upload: Upload) -> dict[str, str]:
    """The checkout's compose files, as Compose picks them, by name (ContractError if none)."""
    return {name: upload.text(name) for name in appspec.compose_file_names(list(upload.paths))}


def compose_documents(upload: Upload) -> dict[str, dict]:
    """The checkout's compose files, parsed, by name in Compose's order (ContractError if unreadable)."""
    return {name: appspec.compose_document(text, name) for name, text in compose_texts(upload).items()}


def contract_problems(upload: Upload) -> list[str]:
    """The local checkout against the app contract (pure; unit-tested)."""
    try:
        documents = compose_documents(upload)
    except appspec.ContractError as error:
        return [f"srq_hpn_app_local_path: {error}"]
    services = {name for document in documents.values() for name in (document.get("services") or {})}
    missing = [name for name in layout.SERVICES if name not in services]
    if missing:
        return [f"srq_hpn_app_local_path: {next(iter(documents))} has no service {', '.join(missing)} "
                f"(the guide's stack: {', '.join(layout.SERVICES)})"]
    return []


def app_variables(settings: Settings, upload: Upload, on_server: dict, environ: dict | None = None) -> Resolved:
    """The variables the local checkout's files ask for, resolved: the problems of those
    that get no value, and where the others come from (names only)."""
    try:
        needed = appspec.needed_variables(compose_texts(upload), upload.text(layout.ENV_EXAMPLE))
    except appspec.ContractError:
        return Resolved()  # reported by contract_problems
    sources = EnvSources(settings=settings, passwords=Passwords("-", "-"), on_server=on_server)
    return sources.resolve(needed, environ)


def variable_problems(settings: Settings, upload: Upload, on_server: dict, environ: dict | None = None) -> list[str]:
    """Variables the local checkout's compose file needs that nothing provides."""
    return app_variables(settings, upload, on_server, environ).problems


def server_problems(settings: Settings, environ: dict) -> list[str]:
    """What only the server can tell about the backup settings (read-only questions)."""
    problems = []
    calendar = host.get_fact(facts.CalendarCheck, spec=settings.backup_schedule)
    if not calendar["ok"]:
        problems.append(f"backup_schedule {settings.backup_schedule!r} is not a calendar value systemd accepts: "
                        + " ".join(calendar["error"]))
    if settings.offsite and not environ.get(OFFSITE_PASSWORD_ENV) and not host.get_fact(facts.OffsitePassword):
        problems.append(
            f"{OFFSITE_PASSWORD_ENV} is required to set up the off-server copy ({settings.backup_offsite_repository}): "
            f"export {OFFSITE_PASSWORD_ENV}=... (e.g. openssl rand -base64 32) from your secrets manager. Keep it "
            "there: the copy is encrypted with it, and cannot be read without it"
        )
    return problems


def _settings(data: dict | None = None) -> tuple[Settings | None, list[str]]:
    """This host's settings, or None and every problem of its settings and secrets."""
    data, environ = host.data.dict() if data is None else data, dict(os.environ)
    defaults = load_defaults()
    problems = check_settings(data, defaults, environ)
    return (None if problems else Settings.from_data(with_defaults(data, defaults))), problems


def local_problems(data: dict, ship: bool) -> tuple[Settings | None, Upload | None, list[str]]:
    """Everything that can be checked without the server: the settings, the secrets
    given in the environment, and (when shipping an upload) the local checkout against
    the app contract."""
    settings, problems = _settings(data)
    upload = None
    if not problems and settings.app_source == "upload" and ship and not settings.edge:
        try:
            upload = Upload.of(settings.local_source_path())
        except (SourceError, OSError) as error:
            problems.append(f"srq_hpn_app_local_path: {error}")
        else:
            problems += contract_problems(upload)
            if settings.external_db and not problems:
                literal = literal_hosts(list(compose_documents(upload).values()))
                if literal:
                    problems.append(f"srq_hpn_app_local_path: {external_contract_error(literal)}")
    return settings, upload, problems


def settings_only() -> Settings:
    """This host's checked settings, or stop listing every problem: for the commands
    that change nothing on the server (the checklist)."""
    settings, problems = _settings()
    if problems:
        raise PreflightError(f"preflight failed for {host.name}: {SettingsError(problems)}") from None
    return settings


def check(ship: bool = True) -> Deployment:
    """Return this host's checked input, or stop the deploy listing every problem.
    ``ship=False`` (a rollback, a restore): the local checkout is not read.

    Runs while pyinfra collects operations, so a bad configuration stops the run
    before a single command is executed on any server.
    """
    settings, upload, problems = local_problems(host.data.dict(), ship)
    if problems:
        raise PreflightError(f"preflight failed for {host.name}: {SettingsError(problems)}") from None
    if settings.behind_edge or settings.edge:
        servers = {other.name: (other.data.get("srq_hpn_role", "server"), other.data.dict())
                   for other in group.ordered(host.state.inventory)}
        disagree = group.disagreements(servers)
        if disagree:
            raise PreflightError(f"preflight failed for {host.name}: {SettingsError(disagree)}") from None
    if not ship and settings.edge:
        raise PreflightError(f"{host.name} is the edge: it has no release of the app to roll back; "
                             f"add --limit {group.APP_GROUP} (nothing was changed)")
    # One round trip: the server's env file, and the answers to the facts the last run asked.
    snapshot.watch(host)
    try:
        env_text, questions, generation, script, answers = (snapshot.sections_of(run(
            snapshot.read_command(settings.paths, [settings.paths.env_file], upload.manifest_sha if upload else None),
            secret_output=True)) + [[]] * 5)[:5]
    except RemoteError as error:
        raise PreflightError(f"preflight failed for {host.name}: could not read the server's env file: {error}") from None
    on_server = parse_env_file("\n".join(env_text))
    snapshot.load(host, "\n".join(questions), "\n".join(generation), "\n".join(script), answers)
    if upload is not None:
        variables = app_variables(settings, upload, on_server)
        problems += variables.problems
    problems += server_problems(settings, dict(os.environ))
    if problems:
        raise PreflightError(f"preflight failed for {host.name}: {SettingsError(problems)}") from None
    if upload is not None:
        host.log(EnvSources.origins(variables))
    for line in dns_warning(settings):
        host.log_styled(line, fg="yellow", log_func=logger.warning)
    return Deployment(settings=settings, upload=upload, on_server=on_server, backups_on=backups_on(settings))


def backups_on(settings: Settings) -> str:
    """Of a group's servers, the app server that takes (and drills) the backups of the shared
    database, when it is not this one ("" on one server, and on that app server)."""
    if not (settings.behind_edge or settings.edge):
        return ""
    first = group.first_app(host.state.inventory)
    return "" if first is None or first.name == host.name else first.name


def dns_warning(settings: Settings) -> list[str]:
    """A warning (never a refusal) when Caddy is to get a certificate from an ACME server and
    the domain does not resolve to an address of the server, asked from the server: a first
    deploy before DNS points here. Nothing once Caddy serves a certificate for the domain,
    nor for the names never in public DNS (.test, ...)."""
    if not settings.acme or acme.reserved(settings.domain):
        return []
    if host.get_fact(facts.ServedCertificate, domain=settings.domain).get("served"):
        return []
    found = host.get_fact(facts.DomainAddresses, domain=settings.domain)
    return acme.dns_warning(settings.domain, found["resolved"], found["server"], settings.caddy_acme_ca)


class _BeforeConnecting(BaseStateCallback):
    """Checks each host's settings and local checkout before pyinfra connects to it."""

    def __init__(self, ship: bool) -> None:
        self.ship = ship

    def host_before_connect(self, state, host):  # noqa: ARG002 - pyinfra passes both
        _settings_, _upload, problems = local_problems(host.data.dict(), self.ship)
        if problems:
            from tasks.refusal import RefusedBeforeConnecting  # under the CLI only

            raise RefusedBeforeConnecting(f"preflight failed for {host.name}: {SettingsError(problems)}")


# The commands (operation files) whose input is checked before any connection, and
# whether they ship the local checkout.
COMMANDS = {"deploy.py": True, "rollback.py": False, "drill.py": False, "restore.py": False, "checklist.py": False}


def before_connecting(argv: list[str]) -> None:
    """Called from inventory.py: when pyinfra runs one of this repository's commands,
    bad input is refused before a single connection is made (facts are left alone)."""
    commands = [COMMANDS[Path(arg).name] for arg in argv if Path(arg).name in COMMANDS]
    if not commands or not context.ctx_state.isset():
        return
    state = context.ctx_state.get()
    initialise = state.init

    # pyinfra makes its list of callbacks when it initialises the state, right after
    # loading this inventory and before connecting: the check joins the list then.
    def init_then_check(*args, **kwargs):
        initialise(*args, **kwargs)
        state.add_callback_handler(_BeforeConnecting(ship=any(commands)))

    state.init = init_then_check
    # The check runs in the greenlet that would connect: its refusal is pyinfra's error
    # message to print, not a crash for gevent to print a traceback of.
    from tasks.refusal import RefusedBeforeConnecting  # pyinfra's CLI is running

    hub = gevent.get_hub()
    hub.NOT_ERROR = tuple(hub.NOT_ERROR) + (PreflightError, RefusedBeforeConnecting)


def check_command(action: str) -> Deployment:
    """Return this host's checked input for a command other than the deploy (``drill``,
    ``restore``), or stop listing every problem, before anything on the server changes.
    A restore also needs the backup's name and the confirmation."""
    data = host.data.dict()
    settings, problems = _settings(data)
    if not problems and action == "restore":
        problems += restore_problems(with_defaults(data, load_defaults()))
    if problems:
        raise PreflightError(f"{action} refused for {host.name}: {SettingsError(problems)}") from None
    elsewhere = backups_on(settings)
    if elsewhere:
        raise PreflightError(f"{action} refused for {host.name}: the group's backups are on {elsewhere}; "
                             f"add --limit {elsewhere} (nothing was changed)")
    wanted = settings.restore_backup if action == "restore" else settings.drill_backup
    if wanted and (action == "restore" or settings.drill_from == "local"):
        problems += backup_problems(settings, wanted, complete=action == "restore")
    if problems:
        raise PreflightError(f"{action} refused for {host.name}: {SettingsError(problems)}") from None
    return Deployment(settings=settings, upload=None, on_server={})


def backup_problems(settings: Settings, name: str, complete: bool) -> list[str]:
    """Whether the server has a backup of that name (a complete one, if asked; read-only)."""
    found = {backup["name"]: backup for backup in host.get_fact(facts.Backups, backup_dir=settings.backups_dir)["backups"]}
    if name not in found:
        newest = ", ".join(sorted(found)[-3:]) or "none"
        return [f"there is no backup {name} in {settings.backups_dir} (the newest: {newest}; "
                "pyinfra inventory.py fact tasks.facts.Backups lists them)"]
    if complete and not found[name]["verified"]:
        return [f"backup {name} is incomplete: its files differ from its manifest (drill it to see how)"]
    return []
