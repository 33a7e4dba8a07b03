"""Domain-level steps and assertions on a deployed server, for the scenarios."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tasks import layout
from tests.testbed import harness
from tests.testbed.harness import Server

APP_DIR = layout.APP_DIR
STATE_DIR = layout.STATE_DIR
COMPOSE = f"cd {APP_DIR} && docker compose --env-file {layout.ENV_FILE}"
# The same, with the compose files given (the deploy's, and one more for a fault).
COMPOSE_WITH = f"cd {APP_DIR} && COMPOSE_FILE={{files}} docker compose --env-file {layout.ENV_FILE}"


def containers(server: Server) -> dict[str, dict]:
    """name -> {state, health, started_at, service} of the stack's containers (not one-offs)."""
    fmt = ("{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} "
           "{{.State.StartedAt}} {{index .Config.Labels \"com.docker.compose.service\"}}")
    _, ids = server.exec("docker ps -aq --filter label=com.docker.compose.oneoff=False "
                         "--filter label=com.docker.compose.project")
    if not ids.split():
        return {}
    _, out = server.exec(["docker", "inspect", "--format", fmt, *ids.split()])
    result = {}
    for line in out.splitlines():
        name, state, health, started, service = line.split()
        result[name.lstrip("/")] = {"state": state, "health": health, "started_at": started, "service": service}
    return result


def assert_stack_is_up(server: Server) -> None:
    found = containers(server)
    for service in layout.SERVICES:
        name = layout.CONTAINERS[service]
        assert name in found, f"{name} is not on the server: {found}"
        assert found[name]["state"] == "running", found[name]
    assert found[layout.CONTAINERS[layout.DB]]["health"] == "healthy", found


def env_file_values(server: Server) -> dict[str, str]:
    _, text = server.exec(f"cat {APP_DIR}/{layout.ENV_FILE}")
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value.strip("'")
    return values


def start_times(server: Server) -> dict[str, str]:
    """When each stack container last started: unchanged means not restarted."""
    return {name: info["started_at"] for name, info in containers(server).items()}


def deploy(server: Server, settings: dict, *args: str, env: dict | None = None):
    """Run the deploy (-y --json) as an operator would; it must succeed. Returns the run."""
    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "-y", "--json", *args, env=env)
    assert run.returncode == 0, run.describe()
    return run


def failed_deploy(server: Server, settings: dict, *args: str, env: dict | None = None):
    """Run the deploy as an operator would; it must fail, explaining itself (no traceback)."""
    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "-y", *args, env=env)
    assert run.returncode != 0, f"the deploy succeeded:\n{run.describe()}"
    assert_no_traceback(run)
    return run


def planned(server, settings: dict, env: dict | None = None) -> tuple[set[str], list[str]]:
    """(the operations `--dry` says will change, the plan's lines)."""
    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "--dry", "--json", env=env)
    assert run.returncode == 0, run.describe()
    changes = {op["name"] for op in run.json()["plan"] if op["hosts_with_change"]}
    lines = [line.split("Plan: ", 1)[1] for line in run.stderr.splitlines() if "] Plan: " in line]
    return changes, lines


def plan_then_run(server, settings: dict, env: dict | None = None) -> tuple[list[str], object]:
    """The plan of a change, then the run: the same operations changed. Returns (the plan's lines, the run)."""
    changes, lines = planned(server, settings, env)
    run = deploy(server, settings, env=env)
    assert sorted(run.changed_operations()) == sorted(changes), (
        f"planned: {sorted(changes)}\nchanged: {sorted(run.changed_operations())}")
    return lines, run


def assert_no_traceback(run) -> None:
    """pyinfra's own traceback never reaches the operator (a command's own output may hold one)."""
    for marker in ("An internal exception occurred", "site-packages/pyinfra", "pyinfra-debug.log"):
        assert marker not in run.output, f"pyinfra crashed ({marker!r}):\n{run.output[-4000:]}"


def fact(server: Server, settings: dict, name: str, *args: str):
    """One fact of `pyinfra inventory.py fact NAME [ARG=VALUE...] --json`, as the operator
    asks it: this server's answer (the run must succeed)."""
    run = harness.run_pyinfra(server.inventory(**settings), "fact", name, *args, "--json")
    assert run.returncode == 0, run.describe()
    (answer,) = run.json().values()  # keyed by the fact's name and arguments
    return answer["127.0.0.1"]


def audit_log(server: Server) -> list[dict]:
    import json

    _, text = server.exec(f"cat {STATE_DIR}/audit.log 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def lock_is_free(server: Server) -> bool:
    return server.exec(f"test -e {STATE_DIR}/deploy.lock", check=False)[0] != 0


# A new alembic revision for the sample app (0002 -> 0003): a nullable column on events.
ADD_NOTE_MIGRATION = '''"""add a note to events

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("events", sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("events", "note")
'''


def app_copy(source: Path, destination: Path) -> Path:
    """A copy of an app repository to change for one scenario (not a git work tree)."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    return destination


# --- The checklist -------------------------------------------------------------------

CHECKLIST_LINE = re.compile(r"^\s*\[[^\]]+\]\s+(pass|warn|fail|cannot-check|n/a)\s+(.+?) \[(\w+)\]: (.*)$")


@dataclass
class Checklist:
    """One run of `pyinfra inventory.py checklist.py`, read as the operator reads it."""

    run: harness.PyinfraRun
    items: dict[str, dict]  # key -> {"status", "title", "evidence"}, in printed order

    @property
    def statuses(self) -> dict[str, str]:
        return {key: item["status"] for key, item in self.items.items()}

    def evidence(self, key: str) -> str:
        return self.items[key]["evidence"]


def checklist(server: Server, settings: dict, *args: str, env: dict | None = None) -> Checklist:
    """Run the checklist as an operator would (-y) and read its lines (it may fail)."""
    run = harness.run_pyinfra(server.inventory(**settings), "checklist.py", "-y", *args, env=env)
    assert_no_traceback(run)
    items = {}
    for line in run.stderr.splitlines():
        found = CHECKLIST_LINE.match(line)
        if found:
            status, title, key, evidence = found.groups()
            items[key] = {"status": status, "title": title, "evidence": evidence}
    assert items, f"the checklist printed no item:\n{run.describe()}"
    return Checklist(run, items)


def changed_items(before: Checklist, after: Checklist) -> dict[str, str]:
    """The items whose status differs between two runs, with their new status."""
    assert list(before.items) == list(after.items), "the two runs list different items"
    return {key: status for key, status in after.statuses.items() if before.statuses[key] != status}


def recreate_with(server: Server, service: str, override: str) -> None:
    """Recreate one compose service with an extra compose file over the deploy's
    configuration (a change an operator or a bad commit might make); `restore` undoes it."""
    server.exec(f"cat > /tmp/srq-hpn-test-override.yml <<'YAML'\n{override}\nYAML")
    files = env_file_values(server)["COMPOSE_FILE"] + ":/tmp/srq-hpn-test-override.yml"
    server.exec(f"{COMPOSE_WITH.format(files=files)} up -d --no-deps {service}", timeout=300)
    wait_ready(server, service)


def restore(server: Server, service: str) -> None:
    """Recreate a service with exactly the deploy's configuration again."""
    server.exec(f"{COMPOSE} up -d --no-deps {service} && rm -f /tmp/srq-hpn-test-override.yml", timeout=300)
    wait_ready(server, service)


def wait_ready(server: Server, service: str, timeout: int = 180) -> None:
    """Wait (bounded) until a service's container is ready, with the deploy's own program."""
    server.exec(f"{layout.LIB_DIR}/srq-hpn-wait {timeout} {service}", timeout=timeout + 30)


def wait_until(condition, what: str, timeout: float = 60, poll: float = 0.5) -> None:
    """Wait until `condition()` is true, at most `timeout` seconds (then fail saying what)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(poll)


# --- Backups, drills and restores ----------------------------------------------

BACKUP_DIR = layout.BACKUP_DIR


def backups(server: Server, directory: str = BACKUP_DIR) -> list[str]:
    """The complete backups on the server (a directory with a manifest), oldest first."""
    _, out = server.exec(f"cd {directory} 2>/dev/null && ls -1d srq-hpn-*/manifest.json 2>/dev/null || true")
    return sorted(line.split("/", 1)[0] for line in out.split())


def backup_dir_listing(server: Server) -> str:
    """Everything in the backup directory, with sizes and checksums (to prove nothing changed)."""
    _, out = server.exec(f"cd {BACKUP_DIR} && find . -type f -printf '%p %s\\n' | sort && "
                         "find . -type f -exec sha256sum {} + | sort")
    return out


def manifest(server: Server, name: str) -> dict:
    import json

    _, text = server.exec(f"cat {BACKUP_DIR}/{name}/manifest.json")
    return json.loads(text)


def take_backup(server: Server, directory: str = BACKUP_DIR) -> str:
    """Run the backup unit as its timer would; returns the new backup's name (in ``directory``)."""
    before = set(backups(server, directory))
    server.exec("systemctl start srq-hpn-backup.service", timeout=600)
    (name,) = set(backups(server, directory)) - before
    return name


def run_command(server: Server, settings: dict, command: str, *data: str, env: dict | None = None):
    """Run drill.py or restore.py as an operator would (`--data key=value` for each of ``data``)."""
    args = [arg for item in data for arg in ("--data", item)]
    return harness.run_pyinfra(server.inventory(**settings), command, "-y", *args, env=env)


def psql(server: Server, sql: str) -> str:
    """One query as the superuser, in the db container (tuples only)."""
    _, out = server.exec(["docker", "exec", layout.CONTAINERS[layout.DB], "psql", "-X", "-tA", "-U", "srq_hpn",
                          "-d", "srq_hpn", "-c", sql])
    return out.strip()


def data_dump(server: Server) -> str:
    """pg_dump --data-only of the live database (without the dump's random per-run key lines)."""
    _, out = server.exec(["docker", "exec", layout.CONTAINERS[layout.DB], "pg_dump", "-U", "srq_hpn",
                          "--data-only", "srq_hpn"])
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def app_role_problems(database, app: str = "srq_hpn_app") -> list[str]:
    """How the app role on an external database (tests.testbed.managed_db) differs from row
    privileges only: its attributes, its privileges on every table, CREATE anywhere."""
    problems = []
    (role,) = database.query("SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin "
                             "FROM pg_roles WHERE rolname = %s", app)
    if role != (False, False, False, False, False, True):
        problems.append(f"attributes {role}")
    tables = [name for (name,) in database.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
    if not tables:
        problems.append("no table (the migrations did not run)")
    for table in tables:
        (privileges,) = database.query(
            "SELECT has_table_privilege(%s, %s, 'SELECT'), has_table_privilege(%s, %s, 'INSERT'), "
            "has_table_privilege(%s, %s, 'UPDATE'), has_table_privilege(%s, %s, 'DELETE'), "
            "has_table_privilege(%s, %s, 'TRUNCATE'), has_table_privilege(%s, %s, 'REFERENCES')",
            *[value for _ in range(6) for value in (app, f"public.{table}")])
        if privileges != (True, True, True, True, False, False):
            problems.append(f"{table}: {privileges}")
    (creates,) = database.query("SELECT has_schema_privilege(%s, 'public', 'CREATE'), "
                                "has_database_privilege(%s, current_database(), 'CREATE')", app, app)
    if creates != (False, False):
        problems.append(f"CREATE on schema public / the database: {creates}")
    return problems
