"""The speed benchmark's results and its report: the table of each phase's time per round,
the medians and ratios, the goals P1-P4, the readiness lag and where the time goes.

Pure code apart from `machine` (which asks Docker and pyinfra their versions); the
measuring is in benchmarks.speed.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field

from tests.testbed import harness

BY_HAND, DEPLOY = "by hand", "deploy"
PHASES = ("cold", "update", "migration", "noop", "bad", "lag")
TITLES = {
    "cold": "cold: bare server to verified stack",
    "update": "update: api and web code changed",
    "migration": "update: code + one migration",
    "noop": "no-op: deploy again, nothing changed",
    "bad": "bad input: domain https://bad/",
}


@dataclass
class Outcome:
    """One timed phase of one way: its seconds and its steps (start, duration, name)."""

    seconds: float
    steps: list[tuple[float, float, str]] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # what else was found (changed, restarted, connected...)
    run: harness.PyinfraRun | None = None


@dataclass
class Results:
    """Everything measured, by phase and way, one entry per round (None: not run)."""

    rounds: int
    cells: dict[tuple[str, str], list] = field(default_factory=dict)  # Outcome, "failed" or None
    steps: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)  # of one round
    events: dict[str, float | None] = field(default_factory=dict)  # of one round's readiness
    failures: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)

    def put(self, phase: str, way: str, number: int, value) -> None:
        self.cells.setdefault((phase, way), [None] * self.rounds)[number - 1] = value

    def row(self, phase: str, way: str) -> list:
        return self.cells.get((phase, way), [None] * self.rounds)


def lags(events: dict[str, float | None]) -> dict[str, float | None]:
    def between(later: str, earlier: str) -> float | None:
        a, b = events.get(later), events.get(earlier)
        return None if a is None or b is None else a - b
    return {"db": between("next operation after db", "PostgreSQL ready"),
            "api": between("api ready seen", "api ready"),
            "api to next operation": between("next operation after api", "api ready")}


def seconds_of(row: list) -> list[float]:
    return [cell.seconds for cell in row if isinstance(cell, Outcome)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(results: Results, phase: str) -> float | None:
    by_hand, deployed = (median(seconds_of(results.row(phase, way))) for way in (BY_HAND, DEPLOY))
    return deployed / by_hand if by_hand and deployed is not None else None


# The floor of a cold deploy on this machine, from the guide's own steps measured one at a
# time (benchmarks.guide): Docker's packages installed, then the longer of the two paths
# that can run side by side: the database's image pulled and PostgreSQL initialised (its
# app role created, pg_isready), or the app's images built (and started: the guide builds
# web as it starts all).
FLOOR_FIRST = "install Docker (prerequisite)"
FLOOR_PATHS = (("pull the database's image", "db up, initialised"), ("build and start api", "start all"))


def floor_of(outcome) -> float | None:
    """The cold floor from one by-hand cold run's steps (None: a step is missing)."""
    if not isinstance(outcome, Outcome):
        return None
    took = {name: seconds for _, seconds, name in outcome.steps}
    if FLOOR_FIRST not in took or any(step not in took for path in FLOOR_PATHS for step in path):
        return None
    return took[FLOOR_FIRST] + max(sum(took[step] for step in path) for path in FLOOR_PATHS)


def floors(results: Results) -> list[float | None]:
    return [floor_of(outcome) for outcome in results.row("cold", BY_HAND)]


def floor_ratio(results: Results) -> float | None:
    """The deploy's cold median over the floor's median."""
    floor = median([value for value in floors(results) if value is not None])
    deployed = median(seconds_of(results.row("cold", DEPLOY)))
    return deployed / floor if floor and deployed is not None else None


def cell(value, fmt: str = "{:.1f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, Outcome):
        value = value.seconds
    return value if isinstance(value, str) else fmt.format(value)


def table_line(label: str, way: str, values: list, mid, last: str = "") -> str:
    return f"{label:<40} {way:<8} " + "".join(f"{cell(v):>9}" for v in values) + f"{cell(mid):>9}  {last}"


def print_table(results: Results, only: set[str]) -> None:
    rounds = "".join(f"{f'round {n}':>9}" for n in range(1, results.rounds + 1))
    print(f"\n{'phase (seconds)':<40} {'way':<8} {rounds}{'median':>9}  deploy/by hand")
    for phase in [phase for phase in TITLES if phase in only]:
        alone = phase in ("noop", "bad")  # nothing to compare by hand
        by_hand = ["n/a"] * results.rounds if alone else results.row(phase, BY_HAND)
        print(table_line(TITLES[phase], BY_HAND, by_hand, "n/a" if alone else median(seconds_of(by_hand))))
        row, last = results.row(phase, DEPLOY), ratio(results, phase)
        print(table_line("", DEPLOY, row, median(seconds_of(row)), f"{last:.2f}x" if last else ""))
        print_facts(results, phase)
        if phase == "cold":
            row, last = floors(results), floor_ratio(results)
            print(table_line("  the floor (Docker, then longest path)", "", row,
                             median([value for value in row if value is not None]),
                             f"deploy/floor {last:.2f}x" if last else ""))
    if "lag" in only:
        print_lags(results)


def print_facts(results: Results, phase: str) -> None:
    row = results.row(phase, DEPLOY)
    facts = {"noop": {"  changed operations": lambda o: len(o.facts["changed"]),
                      "  restarted containers": lambda o: len(o.facts["restarted"])},
             "bad": {"  connected before failing": lambda o: "yes" if o.facts["connected"] else "no"}}
    for label, read in facts.get(phase, {}).items():
        print(table_line(label, DEPLOY, [str(read(o)) if isinstance(o, Outcome) else o for o in row], ""))


def lag_rows(results: Results) -> dict[str, list]:
    rows: dict[str, list] = {"db": [], "api": [], "api to next operation": []}
    for events in results.row("lag", DEPLOY):
        found = lags(events) if isinstance(events, dict) else {}
        for key in rows:
            rows[key].append(found.get(key))
    return rows


def print_lags(results: Results) -> None:
    labels = {"db": "  db: next operation - PostgreSQL ready", "api": "  api: seen - api ready",
              "api to next operation": "  (api: next operation - api ready)"}
    print("readiness lag (P4), deploy's cold run")
    for key, row in lag_rows(results).items():
        print(table_line(labels[key], DEPLOY, row, median([v for v in row if v is not None]), ""))


def goals(results: Results) -> list[tuple[str, str, bool | None]]:
    """(goal, figures, met?) for P1-P4 and the bad-input promise; None: not measured."""
    cold, update, migration = (ratio(results, phase) for phase in ("cold", "update", "migration"))
    noops = [o for o in results.row("noop", DEPLOY) if isinstance(o, Outcome)]
    noop_mid = median([o.seconds for o in noops])
    changed = [len(o.facts["changed"]) for o in noops]
    restarted = [len(o.facts["restarted"]) for o in noops]
    lag = {key: median([v for v in row if v is not None]) for key, row in lag_rows(results).items()}
    bads = [o for o in results.row("bad", DEPLOY) if isinstance(o, Outcome)]
    bad_mid = median([o.seconds for o in bads])
    connected = sum(o.facts["connected"] for o in bads)

    def show(value, fmt="{:.2f}x"):
        return "-" if value is None else fmt.format(value)
    return [
        ("P1 cold <= 0.7x by hand", f"{show(cold)}; {show(floor_ratio(results))} the floor"
         if cold is not None and floor_ratio(results) else show(cold), None if cold is None else cold <= 0.7),
        ("P2 no-op < 2 s, 0 changed, 0 restarts",
         f"{show(noop_mid, '{:.1f} s')}, changed {changed}, restarted {restarted}",
         None if noop_mid is None else noop_mid < 2 and not any(changed) and not any(restarted)),
        ("P3 updates no slower than by hand", f"code {show(update)}, code + migration {show(migration)}",
         None if update is None or migration is None else update <= 1 and migration <= 1),
        ("P4 moves on < 1 s after readiness",
         f"db {show(lag['db'], '{:.2f} s')}, api {show(lag['api'], '{:.2f} s')}",
         None if lag["db"] is None or lag["api"] is None else lag["db"] < 1 and lag["api"] < 1),
        ("bad input fails < 2 s, before connecting",
         f"{show(bad_mid, '{:.1f} s')}, connected in {connected} of {len(bads)}",
         None if bad_mid is None else bad_mid < 2 and not connected),
    ]


def print_goals(results: Results) -> None:
    print("\ngoals (medians)")
    for goal, figures, met in goals(results):
        verdict = "not measured" if met is None else ("met" if met else "NOT met")
        print(f"  {goal:<42} {figures:<48} {verdict}")


def collapsed(steps: list[tuple[float, float, str]], quick: float = 0.5) -> list[tuple[float, float, str]]:
    """Consecutive quick operations of one deploy step (same name before " | ") as one line."""
    runs: list[list] = []  # [group or None, [steps]]
    for step in steps:
        name, seconds = step[2], step[1]
        group = name.split(" | ")[0] if name.startswith("Starting operation: ") and seconds < quick else None
        if group and runs and runs[-1][0] == group:
            runs[-1][1].append(step)
        else:
            runs.append([group, [step]])
    out = []
    for group, members in runs:
        if len(members) == 1:
            out.append(members[0])
        else:
            total = sum(seconds for _, seconds, _ in members)
            out.append((members[0][0], total, f"{group.removeprefix('Starting operation: ')} | "
                                              f"{len(members)} operations, each < {quick} s"))
    return out


def print_steps(results: Results) -> None:
    for key, steps in results.steps.items():
        print(f"\nsteps of one run: {key} (seconds: start, duration)")
        for start, seconds, name in collapsed(steps):
            print(f"  {start:7.1f} {seconds:6.1f}  {name.removeprefix('Starting operation: ')[:130]}")
    if results.events:
        print("\nreadiness, deploy's cold run of one round (seconds from the deploy's start)")
        for name, at in sorted(results.events.items(), key=lambda item: (item[1] is None, item[1] or 0)):
            print(f"  {cell(at, '{:7.2f}'):>7}  {name}")


def machine() -> dict[str, str]:
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True)
    pyinfra = subprocess.run([harness.pyinfra_command(), "--version"], capture_output=True, text=True)
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "kernel (uname -r)": platform.release(),
        "Docker (host)": docker.stdout.strip() or docker.stderr.strip(),
        "pyinfra": pyinfra.stdout.strip().removeprefix("pyinfra: "),
        "load average at start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def print_report(results: Results, only: set[str]) -> None:
    results.machine["load average at end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print("\nmachine")
    for key, value in results.machine.items():
        print(f"  {key + ':':<28} {value}")
    print_table(results, only)
    print_goals(results)
    print_steps(results)
    for failure in results.failures:
        print(f"\nFAILED {failure}")
