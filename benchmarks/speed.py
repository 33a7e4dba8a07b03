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
  For both ways, one observer's clock: from the start until the new version answers
  through Caddy (its `/api/version` and its page title, asked every 0.1 s through the
  server's published HTTPS port); the whole run's time is printed beside it.
- migration: the same with one more backward-compatible migration (a nullable column);
  by hand, with the guide's Golden Rule 3 first (its `pg_dump` of the database), as the
  deploy backs up before it migrates.
- noop: deploy.py -y --json once more with nothing changed. Also: the operations
  pyinfra reports as changed, and the stack containers whose State.StartedAt (docker
  inspect) differs before and after (restarted). By hand has no equivalent.
- bad: deploy.py -y with srq_hpn_domain "https://bad/": time to its non-zero exit, and
  whether pyinfra connected to the server before it failed (its line "[host] Connected").
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
import re
import shutil
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from benchmarks import guide
from benchmarks.speed_report import (
    BY_HAND,
    DEPLOY,
    PHASES,
    Outcome,
    Results,
    machine,
    print_report,
)
from benchmarks.zero_downtime import app_version
from tasks import layout
from tests.integration.helpers import start_times
from tests.testbed import harness

DB, API = layout.CONTAINERS[layout.DB], layout.CONTAINERS[layout.API]
HEADER = re.compile(r"^--> (.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}


class PhaseFailed(RuntimeError):
    """A way's phase failed; the message says how (command, output)."""


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


def by_hand_update(server, app, checkout, backup: bool = False) -> Outcome:
    return by_hand(server, app, checkout, lambda: guide.update(server, backup=backup))


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
    # pyinfra prints "--> Connecting to hosts..." before its callbacks run; a connection
    # made is its line "[host] Connected".
    return deploy_outcome(run, connected=any(ANSI.sub("", line.text).strip().endswith("] Connected")
                                             for line in run.lines))


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


class NewVersionWatch:
    """One observer for both ways: from the moment an update starts, asks through Caddy
    (the server's published HTTPS port) every 0.1 s until the new version answers, the
    api's `/api/version` and the web's page title both; its clock is the update's."""

    def __init__(self, server: harness.Server, version: int, ca: Path) -> None:
        self.server, self.version, self.ca = server, version, ca
        self.answered_after: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _new(self) -> bool:
        try:
            api = harness.https_get(self.server, "/api/version", self.ca, timeout=2)
            if api.status != 200 or api.json() != {"version": self.version}:
                return False
            return f"<title>srq-hpn v{self.version}</title>" in harness.https_get(self.server, "/", self.ca, timeout=2).text
        except (OSError, ValueError):
            return False

    def _watch(self) -> None:
        while not self._stop.is_set():
            if self._new():
                self.answered_after = time.monotonic() - self.started
                return
            time.sleep(0.1)

    def __enter__(self) -> "NewVersionWatch":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._thread.join(timeout=30)
        self._stop.set()


def measure(phase: str, way: str, server: harness.Server, apps: dict[str, Path], checkout: Path,
            settings: dict) -> Outcome:
    """One phase of one way on its server (the phases before it already done there). An
    update is timed until its new version answers through Caddy (the same observer for
    both ways); the whole run's time is kept beside it."""
    if phase in VERSIONS and phase != "cold":
        ca = harness.caddy_root_ca(server, checkout.parent / f"ca-{server.name}.crt")
        with NewVersionWatch(server, VERSIONS[phase][0], ca) as watch:
            outcome = (by_hand_update(server, apps[phase], checkout, backup=VERSIONS[phase][1]) if way == BY_HAND
                       else deploy_app(server, settings, apps[phase]))
        if watch.answered_after is None:
            raise PhaseFailed(f"the new version never answered through Caddy on {server.name} ({way})")
        outcome.facts["whole run"] = outcome.seconds
        outcome.seconds = watch.answered_after
        return outcome
    if way == BY_HAND:
        return by_hand_cold(server, apps[phase], checkout)
    if phase in apps:
        return deploy_app(server, settings, apps[phase], *(["-vvv"] if phase == "cold" else []))
    return (noop if phase == "noop" else bad_input)(server, settings)


def note(phase: str, outcome: Outcome) -> str:
    facts = outcome.facts
    if "whole run" in facts:
        return f"(the new version answered; the whole run took {facts['whole run']:.1f} s)"
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
