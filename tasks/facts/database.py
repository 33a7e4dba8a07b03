"""Facts about the database: the app role's drift and the migration state."""

from __future__ import annotations

from pyinfra.api import FactBase

from tasks import layout
from tasks.commands import STACK_ENV, configured, if_installed, parse_status, program, quote, status_block
from tasks.settings import load_defaults

HEADS_MARK = "@@heads"


class AppRoleDrift(FactBase):
    """
    Returns how the database's limited app role differs from the wanted state
    (missing role, missing grants or default privileges, a password that differs
    from the env file), one sentence per difference; an empty list when all is well.
    """

    requires_command = "docker"
    default = list

    def command(self):
        check = program("srq-hpn-app-role", "check")
        return if_installed(
            "srq-hpn-app-role",
            f"{check} 2>&1 || echo 'the check itself failed (see the lines above)'",
            "the deploy's programs are not installed yet",
        )

    def process(self, output):
        return [line for line in output if line.strip()]


class MigrationState(FactBase):
    """
    Returns the database's alembic revision and the newest revision of the code, as
    the migration service's image sees them (``alembic current`` and ``alembic heads``
    in a one-off container, as the guide's ``run --rm api alembic ...``)::

        {"ok": True, "current": ["0001"], "heads": ["0002"], "at_head": False}

    On failure ``ok`` is False and ``error`` holds the command's own last lines.
    """

    requires_command = "docker"
    # A one-off container (seconds): asked only when a new release meets a database with
    # data; the snapshot of the next run would start it for nothing.
    snapshot = False

    @staticmethod
    def default():
        return {"ok": False, "current": [], "heads": [], "at_head": False, "error": ["no answer"]}

    def command(self, app_dir=None, service=layout.MIGRATE_SERVICE):
        script = f"alembic current && echo {HEADS_MARK} && alembic heads"
        run = quote("docker", "compose", "--env-file", layout.ENV_FILE, "run", "--rm", "--no-deps", "-T", service,
                    "sh", "-c", script)
        return f"d={configured('APP_DIR', layout.APP_DIR, app_dir)}; " + status_block(f'cd "$d" && {run}')

    def process(self, output):
        ok, lines = parse_status(output)
        if not ok:
            return {"ok": False, "current": [], "heads": [], "at_head": False, "error": lines[-20:]}
        current, heads, target = [], [], None
        target = current
        for line in lines:
            line = line.strip()
            if line == HEADS_MARK:
                target = heads
            elif line and not line.startswith(("INFO", "WARN")):
                target.append(line.split()[0])
        return {"ok": True, "current": current, "heads": heads, "at_head": bool(heads) and sorted(current) == sorted(heads)}


class DatabaseRevision(FactBase):
    """
    Returns the alembic revision(s) recorded in the live database (``alembic_version``)
    and how many tables it has besides, read with psql in the db container (``external``:
    from a client of the external database, once the deploy's programs are installed)::

        {"revisions": ["0002"], "tables": 2}

    ``revisions`` is ``[]`` when there is no ``alembic_version``; None when the database
    does not answer.
    """

    requires_command = "docker"

    def command(self, container=None, user=None, database=None, external=False):
        defaults = load_defaults()
        client = program("srq-hpn-db", "-i") if external else \
            f"docker exec -i {configured('DB_CONTAINER', layout.CONTAINERS[layout.DB], container, STACK_ENV)}"
        psql = (f"{client} psql -X -qtA -U {configured('DB_USER', defaults['postgres_user'], user)} "
                f"-d {configured('DB_NAME', defaults['postgres_db'], database)}")
        script = (
            "SELECT 'tables ' || count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
            "AND tablename <> 'alembic_version';\n"
            "SELECT to_regclass('alembic_version') IS NOT NULL AS versioned \\gset\n"
            "\\if :versioned\nSELECT 'revision ' || version_num FROM alembic_version;\n\\endif\n"
        )
        read = f"printf %s {quote(script)} | {psql} 2>/dev/null || true"
        return if_installed("srq-hpn-db", read, "") if external else read

    def process(self, output):
        found = {"revisions": [], "tables": None}
        for line in output:
            kind, _, value = line.strip().partition(" ")
            if kind == "tables" and value.isdigit():
                found["tables"] = int(value)
            elif kind == "revision" and value:
                found["revisions"].append(value)
        return found if found["tables"] is not None else None
