"""Operations of a release: the deploy lock, the release's images, its record, the
audit log."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyinfra import host, logger
from pyinfra.api import StringCommand, operation

from tasks import group, layout, snapshot
from tasks.commands import program
from tasks.remote import RemoteError, executing, fail, run
from tasks.operations.plan import later
from tasks.plan import Plan

BREAK_HINT = "--data srq_hpn_break_lock=true"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Run:
    """One deploy, rollback or restore on one host: who, what, since when."""

    action: str
    operator: str
    paths: layout.Paths
    started: float = field(default_factory=time.monotonic)
    locked: bool = False
    detail: dict = field(default_factory=dict)  # what else the audit line records (a restore's backup)
    plan: Plan | None = None  # what the run does (its release, its migration), once resolved

    def audit_record(self, result: str, release: str | None, source_revision: str | None) -> dict:
        plan = self.plan
        return {
            "time": now(),
            "action": self.action,
            "operator": self.operator,
            "release": release,
            "source_revision": source_revision,
            "migration_before": plan.migration_before if plan else [],
            "migration_after": (plan.migration_after if result == "ok" else plan.migration_before) if plan else [],
            "result": result,
            "duration_s": round(time.monotonic() - self.started, 1),
            **self.detail,
        }


def audit_command(paths: layout.Paths, record: dict) -> str:
    """Append one JSON line to the audit log (pure; unit-tested)."""
    line = json.dumps(record, sort_keys=True)
    return f"mkdir -p {shlex.quote(paths.state_dir)} && printf '%s\\n' {shlex.quote(line)} >> {shlex.quote(paths.audit_log)}"


def lock_command(paths: layout.Paths, holder: dict, timeout: int, break_lock: bool) -> str:
    """Take the deploy lock (an atomic mkdir), waiting up to ``timeout`` seconds; prints
    "acquired", or "held <holder>" (pure; unit-tested)."""
    lock = shlex.quote(paths.lock)
    generation = shlex.quote(f"{paths.state_dir}/{snapshot.GENERATION}")
    lines = [f"mkdir -p {shlex.quote(paths.state_dir)}"]
    if break_lock:
        lines.append(f"if [ -d {lock} ]; then echo \"broken $(cat {lock}/holder 2>/dev/null)\"; rm -rf {lock}; fi")
    lines += [  # POSIX sh (dash runs it): no $SECONDS
        f"deadline=$(( $(date +%s) + {int(timeout)} ))",
        f"until mkdir {lock} 2>/dev/null; do",
        f"  if [ \"$(date +%s)\" -ge \"$deadline\" ]; then echo \"held $(cat {lock}/holder 2>/dev/null)\"; exit 0; fi",
        "  sleep 1",
        "done",
        f"printf '%s\\n' {shlex.quote(json.dumps(holder, sort_keys=True))} > {lock}/holder",
        # Runs are counted: answers a run took before another one changed the server are stale.
        f"generation=$(cat {generation} 2>/dev/null || echo 0); echo \"generation $generation\"",
        f"echo $((generation + 1)) > {generation}",
        "echo acquired",
    ]
    return "\n".join(lines)


def held_message(holder_json: str, action: str) -> str:
    try:
        holder = json.loads(holder_json)
    except ValueError:
        holder = {}
    who = holder.get("operator", "someone")
    return (
        f"{holder.get('action', 'deploy')} in progress by {who} since {holder.get('since', '?')} "
        f"({holder.get('release') or 'release unknown'}); this {action} did not start.\n"
        f"hint: wait for it to finish (or set srq_hpn_lock_timeout). If that run is gone (stopped, killed, "
        f"lost its connection), break the lock: add {BREAK_HINT}"
    )


@operation()
def locked(run_: Run, release_hint: str | None, timeout: int, break_lock: bool):
    """
    Ensure this run holds the server's deploy lock (deploy, rollback and restore take
    it): a second run refuses at once, or waits up to ``timeout`` seconds, naming the
    holder. A lock left by a run that died is broken only when told to.

    + run_: this run (operator, action)
    + release_hint: the release being deployed, when known before it runs
    + timeout: seconds to wait for the lock
    + break_lock: break a lock left by a run that died (recorded in the audit log)

    Taking the lock is bookkeeping, not a change: it is reported as no change.
    """
    if not executing():
        host.noop("the deploy lock is taken when the deploy runs")
        return
    in_group = group.is_group(host.state.inventory)
    if in_group:  # one server after the other, in the inventory's order
        group.take_turn(host.state, group.LOCK_STEP, host.name)
    try:
        yield from _take_lock(run_, release_hint, timeout, break_lock)
    finally:
        if in_group:
            group.turn_done(group.LOCK_STEP, host.name)


def _take_lock(run_: Run, release_hint: str | None, timeout: int, break_lock: bool):
    if group.stopped():
        yield from fail(f"Not taking the deploy lock of {host.name}: the run stopped ({group.stopped()}); "
                        "nothing was changed on any server")
        return
    holder = {"action": run_.action, "operator": run_.operator, "since": now(), "release": release_hint}
    if timeout:
        host.log(f"Taking the deploy lock (waiting up to {timeout}s for another run)")
    try:
        output = run(lock_command(run_.paths, holder, timeout, break_lock))
    except RemoteError as error:
        yield from fail(f"Could not take the deploy lock: {error}")
        return
    for line in output:
        if line.startswith("broken "):
            host.log_styled(f"Broke the deploy lock held by {line[len('broken '):] or 'an unknown run'}",
                            fg="yellow", log_func=logger.warning)
            run(audit_command(run_.paths, {**run_.audit_record("lock broken", release_hint, None),
                                           "action": "lock-break", "broken_holder": line[len("broken "):]}))
        elif line.startswith("held"):
            yield from fail(held_message(line[len("held"):].strip(), run_.action))
            return
    if "acquired" not in output:
        yield from fail(f"Could not take the deploy lock (its command answered {output!r})")
        return
    run_.locked = True
    # The answers taken at the run's start, and the plan made of them, are stale if another
    # run took the lock since: this run stops before it changes anything.
    for line in output:
        if line.startswith("generation ") and not snapshot.current(host, line.split()[1]):
            unlock(run_, "stale plan", release_hint, None)
            yield from fail(f"another run changed this server while this {run_.action} waited for the lock: its plan "
                            "is out of date, and nothing was changed.\nhint: run it again (it plans anew)")
            return
    host.log(f"Took the deploy lock ({run_.action} by {run_.operator})")
    host.noop(f"this {run_.action} holds the deploy lock")


def unlock(run_: Run, result: str, release: str | None, source_revision: str | None, target=None) -> None:
    """Append this run's audit line and release the lock (also after a failure); a run
    that went well keeps the list of facts it asked, for the next run's snapshot."""
    if not run_.locked:
        return
    command = (audit_command(run_.paths, run_.audit_record(result, release, source_revision))
               + f" ; rm -rf {shlex.quote(run_.paths.lock)}")
    if result == "ok" and target is None:
        command += " ; " + snapshot.record_command(host, run_.paths)
    run(command) if target is None else target(command)
    run_.locked = False


def wanted_images(config: dict, built: list[str], tags: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(the image of each service the app builds, with its tag; the images it pulls) (pure; unit-tested)."""
    project = config.get("name") or layout.PROJECT
    services = config.get("services") or {}
    own = {service: f"{project}-{service}:{tags[service]}" for service in built}
    pulled = sorted({s["image"] for name, s in services.items() if name not in built and s.get("image")})
    return own, pulled


def backs_up(plan: Plan) -> bool:
    """Whether the run backs the database up before it migrates (it holds data)."""
    return plan.migrates and plan.migration.has_data


@operation()
def images_started(plan: Plan):
    """
    Ensure the release's images are on their way: the services the app builds, tagged
    with a checksum of their build context's files and labelled with the digest of their
    build settings, and the missing images the app's compose file names, built and pulled
    in the background while the database starts; and, when the release migrates a database
    that holds data, the backup taken before (named after the revisions) meanwhile. Older
    releases' images stay for rollback; an image already there is never pulled again.

    + plan: this run's plan (tasks.plan.Plan): what to build, to pull, and to back up
    """
    if plan.awaits_fetch:
        yield from later("the images to build once the release is fetched")
        return
    if not plan.build and not plan.pull and not backs_up(plan):
        host.noop(f"the images of release {plan.release.id} are there")
        return
    host.log(f"Preparing images: build {', '.join(plan.build) or 'nothing'}; pull {', '.join(plan.pull) or 'nothing'}")
    backup = []
    if backs_up(plan):
        migration = plan.migration
        before = ", ".join(migration.current) if migration.current is not None else "its revision"
        after = ", ".join(migration.heads) if migration.heads is not None else "the release's heads"
        host.log(f"Backing up the database before migrating {before} -> {after} ({migration.label}), while the "
                 "images build")
        backup = ["--backup", migration.label]
    yield StringCommand(program("srq-hpn-images", "start", plan.release.id, *backup, *plan.build))


@operation()
def images_built(plan: Plan):
    """
    Ensure the release's images are ready, and the backup before migrating taken (what
    ``images_started`` began); on a failure, the build's, the pull's or the backup's own
    last lines: nothing is migrated, nothing restarted.

    + plan: this run's plan (tasks.plan.Plan)
    """
    if plan.awaits_fetch:
        yield from later("the images to build once the release is fetched")
        return
    if not plan.build and not plan.pull and not backs_up(plan):
        host.noop(f"the images of release {plan.release.id} are built")
        return
    yield StringCommand(program("srq-hpn-images", "wait", plan.release.id))


def release_record(release: str, source: str, source_revision: str | None, commit: str | None,
                   images: dict[str, str], heads: list[str], migrations: str | None = None) -> dict:
    return {
        "migrations": migrations,
        "release": release,
        "created": now(),
        "source": source,
        "source_revision": source_revision,
        "commit": commit,
        "images": images,
        "migration_heads": heads,
    }


def prune_plan(releases: list[dict], current: str, keep: int) -> list[tuple[dict, list[str]]]:
    """The releases to remove: all but the newest ``keep`` (by creation), never the
    current one; each with its images that no kept release uses (releases share the
    image of a service whose files did not change) (pure; unit-tested)."""
    ordered = sorted(releases, key=lambda r: r.get("created", ""))
    kept = {r["release"] for r in ordered[-keep:]} | {current}
    used = {image for r in ordered if r["release"] in kept for image in (r.get("images") or {}).values()}
    return [(r, sorted(set((r.get("images") or {}).values()) - used)) for r in ordered if r["release"] not in kept]


@operation()
def release_recorded(paths: layout.Paths, plan: Plan, keep: int):
    """
    Ensure the release is recorded as the running one (for rollback and the audit log),
    and that only the newest ``keep`` releases keep their images.

    + paths: the server's app and state directories
    + plan: this run's plan (tasks.plan.Plan): the release, whether it is new or goes live,
      and the releases to prune
    + keep: how many releases keep their images
    """
    if plan.awaits_fetch:
        yield from later("the release's record once the release is fetched")
        return
    release = plan.release
    releases = paths.releases
    went_live = (f"echo {shlex.quote(release.id)} > {shlex.quote(releases + '/current')} && printf '%s %s\\n' "
                 f"{shlex.quote(now())} {shlex.quote(release.id)} >> {shlex.quote(releases + '/history')}")
    if plan.record_release:
        images = {service: f"{plan.project}-{service}:{plan.release.build_ids.get(service, release.id)}"
                  for service in plan.built}
        record = release_record(release.id, release.source, release.source_revision, release.commit, images,
                                plan.migration_after, release.migrations)
        yield StringCommand(
            f"mkdir -p {shlex.quote(releases)} && printf '%s\\n' {shlex.quote(json.dumps(record, sort_keys=True))}"
            f" > {shlex.quote(releases + '/' + release.id + '.json')} && {went_live}"
        )
    elif plan.goes_live:  # a rollback, or a redeploy of a kept release
        yield StringCommand(went_live)
    for old, unused in plan.pruned:
        images = " ".join(shlex.quote(image) for image in unused)
        host.log(f"Removing release {old['release']} (keeping the newest {keep})")
        yield StringCommand(
            (f"docker image rm {images} >/dev/null 2>&1; " if images else "")
            + f"rm -f {shlex.quote(paths.releases + '/' + old['release'] + '.json')}"
        )
    if not plan.record_release and not plan.goes_live and not plan.pruned:
        host.noop(f"release {release.id} is recorded")


@operation()
def lock_released(run_: Run):
    """
    Ensure this run's line is in the audit log and its lock released (bookkeeping,
    not a change of the server: reported as no change).

    + run_: this run
    """
    if not executing():
        host.noop("the lock is released when the run ends")
        return
    release = run_.plan.release if run_.plan else None
    unlock(run_, "ok", release.id if release else None, release.source_revision if release else None)
    host.noop(f"{run_.action} recorded in the audit log; lock released")
    yield from ()  # a generator that yields no command: no change
