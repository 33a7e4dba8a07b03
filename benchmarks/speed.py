"""How fast the deploy is, against the guide's Production Setup and Deploying Updates done
by hand, side by side in one run on fresh testbed servers; prints each phase's time per
round, the medians, the ratio deploy / by hand, the goals P1-P4 and where the time goes.

    .venv/bin/python -m benchmarks.speed [--rounds 3] [--only cold,update,migration,noop,bad,lag]

Each round starts two fresh server containers (Debian 13, systemd, sshd, no Docker), one
per way, and removes them at its end. Within a phase, odd rounds run the guide by hand
first and even rounds the deploy first, to spread any drift of the machine. Traffic goes
only to ports its own containers publish on 127.0.0.1 and between its own containers (the
servers' apt reaches Debian's mirror, for both ways alike).

What each figure measures (wall time, seconds):

- cold: bare server to verified stack. By hand: `benchmarks.guide.setup`, from installing
  Docker with Debian's packages (the guide's prerequisite, as a person must) to the
  guide's Step 4 checks answering through Caddy; not counted, though shown in the steps:
  `guide.publish`, which puts the app's git repository on the server (the remote a person
  clones from). The deploy: `pyinfra inventory.py deploy.py -y -vvv` with the testbed's
  settings, from process start to exit (it ends with its own checks through Caddy);
  -vvv only prints the commands' output, which the readiness lag is read from.
- update: the api and web code changed (a new route, a new page title). By hand:
  `guide.update` after `guide.publish` of the new commit (pull, build, migrate, up -d,
  checks through Caddy). The deploy: deploy.py with that copy (srq_hpn_app_local_path).
- migration: the same with one more backward-compatible migration (a nullable column).
- noop: deploy.py -y --json once more with nothing changed. Also: the operations
  pyinfra reports as changed, and the stack containers whose State.StartedAt (docker
  inspect) differs before and after (restarted). By hand has no equivalent.
- bad: deploy.py -y with srq_hpn_domain "https://bad/": time to its non-zero exit, and
  whether pyinfra printed "--> Connecting to hosts..." before it failed.
- lag (P4), read from the deploy's cold run. Every time below is on one clock: the
  servers' containers share this machine's kernel clock, so Docker's timestamps on a
  server and the host's arrival times of pyinfra's lines compare directly.
  * PostgreSQL ready: Docker's timestamp (`docker logs -t`: when the server's Docker
    read the line) of the db container's last "database system is ready to accept
    connections" before the deploy said the db was ready (its final start; the first
    such line is the init-time server, which listens on a Unix socket only).
  * api ready: Docker's timestamp of the api container's last "Uvicorn running on"
    before the deploy said the api was ready (uvicorn logs it once its socket listens,
    after the app's own startup).
  * seen: when the line "db (srq-hpn-db) is ready after Ns" (srq-hpn-wait), or
    "api (srq-hpn-api) is ready after Ns" (srq-hpn-rollout), reached this machine;
    the server program prints it as soon as its probe passes, and pyinfra (-vvv) streams
    it; the SSH channel adds milliseconds, so this is an upper bound.
  * next operation: when the next "--> Starting operation" line reached this machine.
  db lag = next operation - PostgreSQL ready (the deploy's next step is its own
  operation). api lag = seen - api ready: the api's wait is one step inside the rollout
  program, which goes on at once to web's and Caddy's, so the next operation would count
  those too (it is printed for information). P4 is met when the medians of both are < 1 s.
  Also printed for one round: when the db and api containers started (State.StartedAt),
  so the time before a container starts (image pull, build) is told from its own startup.

The steps printed for one round: by hand, each command group of benchmarks/guide.py;
the deploy, each pyinfra header line ("--> ...", "--> Starting operation: ...") with the
seconds from start at which it arrived (the deploy runs with PYTHONUNBUFFERED=1, its
lines read as they come), and the time until the next one.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks import guide
from benchmarks.zero_downtime import app_version
from tasks import layout
from tests.integration.helpers import start_times
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
DB, API = layout.CONTAINERS[layout.DB], layout.CONTAINERS[layout.API]
HEADER = re.compile(r"^--> (.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}


class PhaseFailed(RuntimeError):
    """A way's phase failed; the message says how (command, output)."""


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


# --- the two ways --------------------------------------------------------------------

def timed(func) -> tuple[float, object]:
    started = time.monotonic()
    result = func()
    return time.monotonic() - started, result


def guide_steps(published: float, steps: dict[str, float]) -> list[tuple[float, float, str]]:
    """benchmarks.guide's step durations as (start, duration, name), publish first."""
    out, at = [(-published, published, "publish: the app's repository on the server (not counted)")], 0.0
    for name, seconds in steps.items():
        out.append((at, seconds, name))
        at += seconds
    return out


def by_hand(server: harness.Server, app: Path, checkout: Path, action) -> Outcome:
    """`guide.publish` of `app`, then `action` (guide.setup or guide.update), timed."""
    published, _ = timed(lambda: guide.publish(server, app, checkout))
    try:
        seconds, steps = timed(action)
    except (harness.TestbedError, RuntimeError) as error:
        raise PhaseFailed(f"the guide by hand failed on {server.name}:\n{error}") from error
    return Outcome(seconds, guide_steps(published, steps))


def by_hand_cold(server, app, checkout) -> Outcome:
    return by_hand(server, app, checkout, lambda: guide.setup(server, harness.REGISTRY_MIRROR, harness.REGISTRY_HOST))


def by_hand_update(server, app, checkout) -> Outcome:
    return by_hand(server, app, checkout, lambda: guide.update(server))


def deploy(server: harness.Server, settings: dict, *args: str, ok: bool = True) -> harness.PyinfraRun:
    """`pyinfra inventory.py deploy.py -y *args`, its lines stamped as they arrive."""
    run = harness.run_pyinfra(server.inventory(**settings), "deploy.py", "-y", *args, env=UNBUFFERED, stamped=True)
    if ok and run.returncode != 0:
        raise PhaseFailed(f"the deploy failed on {server.name}:\n{run.describe(tail=40)}")
    return run


def deploy_steps(run: harness.PyinfraRun) -> list[tuple[float, float, str]]:
    """pyinfra's header lines as (arrived at, until the next one, text)."""
    marks = [(line.at, match.group(1)) for line in run.lines if line.stream == "stderr"
             and (match := HEADER.match(ANSI.sub("", line.text).strip()))]
    marks.insert(0, (0.0, "(pyinfra starting: Python and its imports)"))
    ends = [at for at, _ in marks[1:]] + [run.seconds]
    return [(at, end - at, text) for (at, text), end in zip(marks, ends)]


def deploy_outcome(run: harness.PyinfraRun, **facts) -> Outcome:
    return Outcome(run.seconds, deploy_steps(run), facts, run)


def deploy_app(server: harness.Server, settings: dict, app: Path, *args: str) -> Outcome:
    return deploy_outcome(deploy(server, {**settings, "srq_hpn_app_local_path": str(app)}, *args))


def noop(server: harness.Server, settings: dict) -> Outcome:
    """The deploy again with nothing changed: its changed operations and restarts."""
    before = start_times(server)
    run = deploy(server, settings, "--json")
    after = start_times(server)
    restarted = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    return deploy_outcome(run, changed=run.changed_operations(), restarted=restarted)


def bad_input(server: harness.Server, settings: dict) -> Outcome:
    """The deploy with an invalid domain: time to its non-zero exit, and whether it connected."""
    run = deploy(server, {**settings, "srq_hpn_domain": "https://bad/"}, ok=False)
    if run.returncode == 0:
        raise PhaseFailed(f"the deploy accepted srq_hpn_domain='https://bad/':\n{run.describe(tail=20)}")
    return deploy_outcome(run, connected=any("--> Connecting to hosts" in line.text for line in run.lines))


# --- readiness lag (P4) ------------------------------------------------------------------

def docker_time(stamp: str) -> float:
    """Docker's RFC 3339 timestamp (nanoseconds, Z) as seconds since the epoch."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00").timestamp()


def logged_at(server: harness.Server, container: str, text: str, before: float | None) -> float | None:
    """Docker's timestamp of the last log line of `container` holding `text` (before
    `before`, the host's clock, when given)."""
    _, out = server.exec(["sh", "-c", f"docker logs -t {container} 2>&1"], timeout=60)
    stamps = [docker_time(line.split(" ", 1)[0]) for line in out.splitlines() if text in line]
    stamps = [stamp for stamp in stamps if before is None or stamp <= before]
    return stamps[-1] if stamps else None


def started_at(server: harness.Server, container: str) -> float:
    _, out = server.exec(["docker", "inspect", "--format", "{{.State.StartedAt}}", container], timeout=60)
    return docker_time(out.strip())


def arrival(run: harness.PyinfraRun, text: str, after: float = 0.0) -> float | None:
    """The host's clock when the first stderr line holding `text` arrived after `after`."""
    return next((line.wall for line in run.lines
                 if line.stream == "stderr" and line.wall > after and text in ANSI.sub("", line.text)), None)


def readiness(server: harness.Server, run: harness.PyinfraRun) -> dict[str, float | None]:
    """The events of P4, in seconds from the deploy's start (see the module's docstring)."""
    db_seen, api_seen = arrival(run, f"db ({DB}) is ready after"), arrival(run, f"api ({API}) is ready after")
    events = {
        "db container started": started_at(server, DB),
        "PostgreSQL ready": logged_at(server, DB, "database system is ready to accept connections", before=db_seen),
        "db ready seen": db_seen,
        "next operation after db": db_seen and arrival(run, "--> Starting operation", after=db_seen),
        "api container started": started_at(server, API),
        "api ready": logged_at(server, API, "Uvicorn running on", before=api_seen),
        "api ready seen": api_seen,
        "next operation after api": api_seen and arrival(run, "--> Starting operation", after=api_seen),
    }
    return {name: (wall - run.started_at if wall else None) for name, wall in events.items()}


def lags(events: dict[str, float | None]) -> dict[str, float | None]:
    def between(later: str, earlier: str) -> float | None:
        a, b = events.get(later), events.get(earlier)
        return None if a is None or b is None else a - b
    return {"db": between("next operation after db", "PostgreSQL ready"),
            "api": between("api ready seen", "api ready"),
            "api to next operation": between("next operation after api", "api ready")}


# --- one round ----------------------------------------------------------------------

VERSIONS = {"cold": (1, False), "update": (2, False), "migration": (3, True)}


def plan(only: set[str]) -> dict[str, list[str]]:
    """The phases each way runs: what was asked, and the cold setup any later phase needs."""
    hand = [phase for phase in ("update", "migration") if phase in only]
    deployed = [phase for phase in ("update", "migration", "noop") if phase in only]
    bad = ["bad"] if "bad" in only else []
    return {
        BY_HAND: (["cold"] if hand or "cold" in only else []) + hand,
        DEPLOY: (["cold"] if deployed or only & {"cold", "lag"} else []) + deployed + bad,
    }


def measure(phase: str, way: str, server: harness.Server, apps: dict[str, Path], checkout: Path,
            settings: dict) -> Outcome:
    """One phase of one way on its server (the phases before it already done there)."""
    if way == BY_HAND:
        return (by_hand_cold if phase == "cold" else by_hand_update)(server, apps[phase], checkout)
    if phase in apps:
        return deploy_app(server, settings, apps[phase], *(["-vvv"] if phase == "cold" else []))
    return (noop if phase == "noop" else bad_input)(server, settings)


def note(phase: str, outcome: Outcome) -> str:
    facts = outcome.facts
    if phase == "noop":
        return f"changed {len(facts['changed'])}, restarted {len(facts['restarted'])}"
    if phase == "bad":
        return f"connected first: {'yes' if facts['connected'] else 'no'}"
    return ""


def record(results: Results, number: int, phase: str, way: str, outcome: Outcome, server: harness.Server) -> None:
    results.put(phase, way, number, outcome)
    results.steps.setdefault(f"{phase}, {way}", outcome.steps)
    if phase == "cold" and way == DEPLOY:
        events = readiness(server, outcome.run)
        results.put("lag", DEPLOY, number, events)
        results.events = results.events or events
        versions = "docker version --format '{{.Server.Version}}'; docker compose version --short"
        results.machine.setdefault("server's Docker, Compose", " ".join(server.exec(versions, timeout=60)[1].split()))
    print(f"round {number}: {phase:<9} {way:<8} {outcome.seconds:6.1f} s  {note(phase, outcome)}", flush=True)


def attempt(results: Results, number: int, phase: str, way: str, measure_it) -> Outcome | None:
    """Measure one phase of one way; a failure is recorded (and printed), not raised."""
    try:
        return measure_it()
    except PhaseFailed as failure:
        results.put(phase, way, number, "failed")
        results.failures.append(f"round {number}, {phase}, {way}: {failure}")
        print(f"round {number}: {phase} {way} FAILED:\n{failure}", file=sys.stderr, flush=True)
        return None


def run_round(number: int, testbed: harness.Testbed, apps: dict[str, Path], work: Path, only: set[str],
              results: Results) -> None:
    """Fresh servers for both ways, each phase in turn, the two ways alternating by round;
    after a failure, that way's later phases are skipped in this round."""
    order = [BY_HAND, DEPLOY] if number % 2 else [DEPLOY, BY_HAND]
    phases = plan(only)
    servers = {way: testbed.start_server(f"speed{number}-{'guide' if way == BY_HAND else 'deploy'}")
               for way in order if phases[way]}
    settings = testbed.settings(apps["cold"])
    try:
        for phase in ("cold", "update", "migration", "noop", "bad"):
            for way in [way for way in order if phase in phases[way]]:
                outcome = attempt(results, number, phase, way, lambda: measure(
                    phase, way, servers[way], apps, work / f"checkout-{number}", settings))
                if outcome is None:
                    phases[way] = []
                    continue
                record(results, number, phase, way, outcome, servers[way])
                if way == DEPLOY and phase in apps:
                    settings = testbed.settings(apps[phase])
    finally:
        for server in servers.values():
            server.remove()
            testbed.servers.remove(server)


# --- the report ------------------------------------------------------------------------

def seconds_of(row: list) -> list[float]:
    return [cell.seconds for cell in row if isinstance(cell, Outcome)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(results: Results, phase: str) -> float | None:
    by_hand, deployed = (median(seconds_of(results.row(phase, way))) for way in (BY_HAND, DEPLOY))
    return deployed / by_hand if by_hand and deployed is not None else None


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
        ("P1 cold <= 0.7x by hand", show(cold), None if cold is None else cold <= 0.7),
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


# --- the command ---------------------------------------------------------------------------

def interrupted(*_args) -> None:
    raise KeyboardInterrupt


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each on fresh servers (default 3)")
    parser.add_argument("--only", default=",".join(PHASES), help=f"phases to run, of {','.join(PHASES)} (default all)")
    parsed = parser.parse_args(argv)
    parsed.only = set(parsed.only.split(","))
    if parsed.only - set(PHASES) or parsed.rounds < 1:
        parser.error(f"--only takes {','.join(PHASES)}; --rounds at least 1")
    return parsed


def main(argv: list[str]) -> int:
    chosen = options(argv)
    ok, detail = harness.docker_available()
    if not ok:
        print(f"needs a Docker engine: {detail}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupted)
    results = Results(chosen.rounds, machine=machine())
    work = guide.workdir()
    testbed = harness.Testbed(log=None)
    try:
        testbed.start()
        apps = {phase: app_version(work, version, migration) for phase, (version, migration) in VERSIONS.items()}
        for number in range(1, chosen.rounds + 1):
            run_round(number, testbed, apps, work, chosen.only, results)
    except KeyboardInterrupt:
        print("\ninterrupted: removing the testbed", file=sys.stderr)
        return 130
    finally:
        testbed.close()
        shutil.rmtree(work, ignore_errors=True)
    print_report(results, chosen.only)
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
