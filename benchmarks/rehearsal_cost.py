"""What the migration rehearsal costs a deploy, on a database of 100,000 rows: updates with a
migration and updates without one, each with `srq_hpn_migration_rehearsal` on and off, on
one testbed server.

    .venv/bin/python -m benchmarks.rehearsal_cost [--rows 100000] [--rounds 3]

The sample app is deployed (at 0002), then its `events` table filled to ``--rows`` rows
through psql in the db container (INSERT ... SELECT over generate_series). Each round then
deploys four updates of the app, each a code change (a new `/api/version`, a new page
title): two without a migration, two with one (a nullable column added to `events`, then
filled from every row's title), each pair once with the rehearsal on and once off. Odd
rounds run "on" first, even rounds "off" first, to spread any drift of the machine.

Printed per deploy (wall time, seconds): the whole run (pyinfra's start to its exit); the
migration's operation (from its "Starting operation" line to the next one: srq-hpn-migrate
whole); from the record srq-hpn-migrate wrote (migrations/last.json), the migration's time
on the copy and on production; the rehearsal's whole time in the deploy (the operation less
production's migration: the scratch database started, the backup restored, the migration on
the copy, the scratch database removed); the operations pyinfra reports as changed. And what
shows whether a rehearsal ran: the rehearsal's containers and network created (`docker
events` on the server, watched during the deploy), the backups taken, and whether the record
and its history changed. Then the medians per kind of update, and the migration's lines (the
operation's, then srq-hpn-migrate's) as the deploy showed them for one rehearsed migration.
Timings are printed, never judged.

Traffic goes only to the testbed's own containers (the server's SSH port published on
127.0.0.1, the registry on the testbed's network).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import guide
from benchmarks.speed import ANSI, deploy, deploy_steps
from benchmarks.speed_report import machine
from benchmarks.zero_downtime import app_version
from tasks import layout
from tests.integration.helpers import backups, psql
from tests.testbed import harness

RECORD = layout.Paths().migration_record
HISTORY = str(Path(RECORD).parent / "history.jsonl")
MIGRATE_OPERATION = "Ensure the database schema is at the release's newest migration"
# The migration's lines, as the deploy shows them: the operation's, then srq-hpn-migrate's own.
PROGRAM_LINES = ("] Migrating ", "Rehearsing the migration", "Rehearsal passed", "Migrated production",
                 "no backup labelled")
EVENTS_LOG = "/tmp/srq-hpn-rehearsal-events.log"


def migration(revision: int) -> str:
    """A migration of the sample app that touches every row: a nullable column on events,
    filled from each row's title."""
    column = f"summary_{revision:04d}"
    return f'''"""events get a {column}, filled from their titles

Revision ID: {revision:04d}
Revises: {revision - 1:04d}
"""
import sqlalchemy as sa
from alembic import op

revision = "{revision:04d}"
down_revision = "{revision - 1:04d}"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("events", sa.Column("{column}", sa.Text(), nullable=True))
    op.execute("UPDATE events SET {column} = title")


def downgrade():
    op.drop_column("events", "{column}")
'''


def release(work: Path, version: int, newest_migration: int) -> Path:
    """The sample app at code version ``version``, with its migrations up to ``newest_migration``."""
    app = app_version(work, version, migration=False)
    for revision in range(3, newest_migration + 1):
        (app / f"apps/api/alembic/versions/{revision:04d}_summary.py").write_text(migration(revision))
    return app


def fill(server: harness.Server, rows: int) -> str:
    """``rows`` rows in events (the app's table), through psql in the db container."""
    psql(server, f"INSERT INTO events (title, starts_at) SELECT 'event ' || n, now() + n * interval '1 minute' "
                 f"FROM generate_series(1, {rows}) AS n")
    return psql(server, "SELECT count(*) FROM events")


class RehearsalWatch:
    """`docker events` on the server, during a deploy: the containers created with the
    rehearsal's label (its scratch database, its one-off migration container) and the
    networks named as its internal network is (a network's events carry no labels). Watched
    as they come: Docker keeps too few past events to ask for them after."""

    FORMAT = f'{{{{.Type}}}} {{{{.Actor.Attributes.name}}}} {{{{index .Actor.Attributes "{layout.REHEARSAL_LABEL}"}}}}'

    def __init__(self, server: harness.Server) -> None:
        self.server = server
        self.created: list[str] = []

    def __enter__(self) -> "RehearsalWatch":
        _, pid = self.server.exec(
            ["sh", "-c", f"setsid docker events --filter type=container --filter type=network --filter event=create "
                         f"--format '{self.FORMAT}' >{EVENTS_LOG} 2>&1 </dev/null & echo $!"])
        self.pid = pid.strip()
        return self

    def __exit__(self, *_exc) -> None:
        _, out = self.server.exec(f"kill {self.pid}; sleep 0.2; cat {EVENTS_LOG}; rm -f {EVENTS_LOG}")
        self.created = rehearsals_own(out)


def rehearsals_own(events: str) -> list[str]:
    """Of `docker events` lines ("TYPE NAME REHEARSAL-LABEL-VALUE"), the rehearsal's: the
    containers with its label, the networks named as its network is."""
    created = []
    for line in events.splitlines():
        kind, name, label = (line.split(" ", 2) + ["", ""])[:3]
        if (kind == "container" and label.strip() not in ("", "<no value>")) or \
                (kind == "network" and name.startswith("srq-hpn-rehearsal-")):
            created.append(f"{kind} {name}")
    return created


@dataclass
class Deployed:
    """One measured deploy."""

    kind: str  # "migration" or "no migration"
    rehearsal: bool  # the setting
    seconds: float  # the whole run
    migrate_s: float | None  # the migration's operation, as pyinfra's lines arrived
    record: dict | None  # the record srq-hpn-migrate wrote during this deploy (None: unchanged)
    history_added: int
    backups_added: int
    created: list[str]  # the rehearsal's containers and network
    changed: int  # operations pyinfra reports as changed
    lines: list[str] = field(default_factory=list)  # the migration's lines, as the deploy shows them


def server_state(server: harness.Server) -> tuple[str, int, int]:
    _, record = server.exec(f"cat {RECORD} 2>/dev/null || true")
    _, history = server.exec(f"cat {HISTORY} 2>/dev/null | wc -l")
    return hashlib.sha256(record.encode()).hexdigest(), int(history.strip() or 0), len(backups(server))


def measure(server: harness.Server, settings: dict, app: Path, kind: str, rehearsal: bool) -> Deployed:
    record_before, history_before, backups_before = server_state(server)
    with RehearsalWatch(server) as watch:
        run = deploy(server, {**settings, "srq_hpn_app_local_path": str(app),
                              "srq_hpn_migration_rehearsal": rehearsal}, "--json")
    record_after, history_after, backups_after = server_state(server)
    migrate_s = next((seconds for _, seconds, name in deploy_steps(run) if MIGRATE_OPERATION in name), None)
    lines = [line.strip() for line in ANSI.sub("", run.output).splitlines()
             if any(words in line for words in PROGRAM_LINES)]
    record = None
    if record_after != record_before:
        record = json.loads(server.exec(f"cat {RECORD}")[1])
    return Deployed(kind, rehearsal, run.seconds, migrate_s, record, history_after - history_before,
                    backups_after - backups_before, watch.created, len(run.changed_operations()), lines)


def cell(value, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def rehearsal_s(d: Deployed) -> float | None:
    """The rehearsal's whole time in the deploy: the migration's operation less production's
    migration (the scratch database started, the backup restored, the migration on the copy,
    the scratch database removed)."""
    if d.record is None or d.migrate_s is None or d.record["rehearsal"]["result"] != "passed":
        return None
    return d.migrate_s - d.record["duration_s"]


def print_deploys(deploys: list[Deployed]) -> None:
    print(f"\n{'update':<13} {'rehearsal':<9} {'whole run':>9} {'migrate op':>10} {'rehearsal':>9} {'on copy':>7} "
          f"{'on prod':>7} {'changed':>7}  {'record (history)':<28} {'backups':>7}  rehearsal's containers/networks")
    for d in deploys:
        rehearsed = d.record["rehearsal"] if d.record else {}
        record = "unchanged" if d.record is None else f"{d.record['result']}, {rehearsed.get('result')}"
        print(f"{d.kind:<13} {'on' if d.rehearsal else 'off':<9} {d.seconds:>9.1f} {cell(d.migrate_s):>10} "
              f"{cell(rehearsal_s(d)):>9} {cell(rehearsed.get('duration_s')):>7} "
              f"{cell(d.record and d.record.get('duration_s')):>7} {d.changed:>7}  "
              f"{record + f' (+{d.history_added})':<28} {('+' + str(d.backups_added)):>7}  {len(d.created)}"
              f"{' (' + ', '.join(d.created) + ')' if d.created else ''}")


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def print_medians(deploys: list[Deployed]) -> None:
    print(f"\nmedians (seconds) {'whole run':>12} {'migrate op':>11} {'rehearsal':>9} {'on copy':>8} {'on prod':>8}")
    rows = {}
    for kind in ("no migration", "migration"):
        for rehearsal in (True, False):
            chosen = [d for d in deploys if d.kind == kind and d.rehearsal == rehearsal]
            if not chosen:
                continue
            rows[kind, rehearsal] = figures = (
                median(d.seconds for d in chosen), median(d.migrate_s for d in chosen),
                median(rehearsal_s(d) for d in chosen),
                median(d.record["rehearsal"]["duration_s"] if d.record else None for d in chosen),
                median(d.record["duration_s"] if d.record else None for d in chosen))
            label = f"{kind}, rehearsal {'on' if rehearsal else 'off'}"
            print(f"  {label:<30} {cell(figures[0]):>7} {cell(figures[1]):>11} {cell(figures[2]):>9} "
                  f"{cell(figures[3]):>8} {cell(figures[4]):>8}   ({len(chosen)} deploys)")
    for kind in ("no migration", "migration"):
        on, off = rows.get((kind, True)), rows.get((kind, False))
        if on and off:
            migrate = "" if on[1] is None or off[1] is None else f", the migration's operation {on[1] - off[1]:+.1f} s"
            print(f"  rehearsal on - off, {kind + ':':<14} whole run {on[0] - off[0]:+.1f} s{migrate}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the events table (default 100000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of four updates (default 3)")
    options = parser.parse_args(argv)
    ok, detail = harness.docker_available()
    if not ok:
        print(f"needs a Docker engine: {detail}", file=sys.stderr)
        return 2

    facts = machine()
    work = guide.workdir()
    testbed = harness.Testbed(log=None)
    deploys: list[Deployed] = []
    try:
        testbed.start()
        server = testbed.start_server("rehearsal-cost")
        settings = testbed.settings()
        deploy(server, {**settings, "srq_hpn_app_local_path": str(release(work, 1, 2))})
        counted = fill(server, options.rows)
        _, size = server.exec(["docker", "exec", layout.CONTAINERS[layout.DB], "psql", "-X", "-tA", "-U", "srq_hpn",
                               "-d", "srq_hpn", "-c", "SELECT pg_size_pretty(pg_database_size('srq_hpn'))"])
        print(f"events holds {counted} rows (database {size.strip()})", flush=True)
        version, newest = 1, 2
        for round_ in range(1, options.rounds + 1):
            order = (True, False) if round_ % 2 else (False, True)
            for kind in ("no migration", "migration"):
                for rehearsal in order:
                    version += 1
                    newest += kind == "migration"
                    deployed = measure(server, settings, release(work, version, newest), kind, rehearsal)
                    deploys.append(deployed)
                    print(f"round {round_}: {kind}, rehearsal {'on' if rehearsal else 'off'}: "
                          f"{deployed.seconds:.1f} s", flush=True)
    finally:
        testbed.close()
        shutil.rmtree(work, ignore_errors=True)

    facts["load average at end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print("\nmachine")
    for key, value in facts.items():
        print(f"  {key + ':':<28} {value}")
    print_deploys(deploys)
    print_medians(deploys)
    shown = next((d for d in deploys if d.kind == "migration" and d.rehearsal and d.lines), None)
    if shown:
        print("\nthe migration's lines, as the deploy showed them, for one rehearsed migration:")
        for line in shown.lines:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
