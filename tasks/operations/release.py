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

from tasks import facts, layout
from tasks.commands import compose, quote
from tasks.remote import RemoteError, executing, fail, run
from tasks.runtime import learnt

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

    def audit_record(self, result: str, release: str | None, source_revision: str | None) -> dict:
        state = learnt()
        return {
            "time": now(),
            "action": self.action,
            "operator": self.operator,
            "release": release,
            "source_revision": source_revision,
            "migration_before": state.migration_before,
            "migration_after": state.migration_after,
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
    lines = [f"mkdir -p {shlex.quote(paths.state_dir)}"]
    if break_lock:
        lines.append(f"if [ -d {lock} ]; then echo \"broken $(cat {lock}/holder 2>/dev/null)\"; rm -rf {lock}; fi")
    lines += [
        f"deadline=$((SECONDS + {int(timeout)}))",
        f"until mkdir {lock} 2>/dev/null; do",
        f"  if [ $SECONDS -ge $deadline ]; then echo \"held $(cat {lock}/holder 2>/dev/null)\"; exit 0; fi",
        "  sleep 1",
        "done",
        f"printf '%s\\n' {shlex.quote(json.dumps(holder, sort_keys=True))} > {lock}/holder",
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
    run_.locked = True
    host.noop(f"this {run_.action} holds the deploy lock")


def unlock(run_: Run, result: str, release: str | None, source_revision: str | None, target=None) -> None:
    """Append this run's audit line and release the lock (also after a failure)."""
    if not run_.locked:
        return
    command = (audit_command(run_.paths, run_.audit_record(result, release, source_revision))
               + f" ; rm -rf {shlex.quote(run_.paths.lock)}")
    run(command) if target is None else target(command)
    run_.locked = False


@operation()
def images_built(paths: layout.Paths):
    """
    Ensure the images of the services the app builds exist for this release, tagged
    with it (``<project>-<service>:<release>``) and built with the current build
    settings (a label records their digest). Older releases' images stay for rollback.

    + paths: the server's app and state directories
    """
    if not executing():
        host.noop("the release's images are built when the deploy runs")
        return
    state = learnt()
    project = (state.config or {}).get("name") or "srq-hpn"
    images = {service: f"{project}-{service}:{state.release}" for service in state.built}
    labels = host.get_fact(facts.ImageLabels, images=tuple(images.values()), label=layout.BUILD_LABEL)
    missing = [service for service, image in images.items() if labels.get(image) != state.build_digest]
    if not missing:
        host.noop(f"the images of release {state.release} are built")
        return
    hint = "hint: the lines above are the build's own; the running version keeps serving. Fix the build and deploy again."
    yield StringCommand(compose(paths.app_dir, "build", *missing) + f" || {{ echo {quote(hint)} >&2; exit 1; }}")


def release_record(release: str, source: str, source_revision: str | None, commit: str | None,
                   images: dict[str, str], heads: list[str]) -> dict:
    return {
        "release": release,
        "created": now(),
        "source": source,
        "source_revision": source_revision,
        "commit": commit,
        "images": images,
        "migration_heads": heads,
    }


def prune_plan(releases: list[dict], current: str, keep: int) -> list[dict]:
    """The releases to remove: all but the newest ``keep`` (by creation), never the
    current one (pure; unit-tested)."""
    ordered = sorted(releases, key=lambda r: r.get("created", ""))
    kept = {r["release"] for r in ordered[-keep:]} | {current}
    return [r for r in ordered if r["release"] not in kept]


@operation()
def release_recorded(paths: layout.Paths, source: str, commit: str | None, keep: int):
    """
    Ensure the running release is recorded (for rollback and the audit log), and that
    only the newest ``keep`` releases keep their images.

    + paths: the server's app and state directories
    + source: "upload" or "git"
    + commit: the local checkout's git commit, when known
    + keep: how many releases keep their images
    """
    if not executing():
        host.noop("the release is recorded when the deploy runs")
        return
    state = learnt()
    known = host.get_fact(facts.Releases, state_dir=paths.state_dir)
    project = (state.config or {}).get("name") or "srq-hpn"
    if known["current"] != state.release or not any(r["release"] == state.release for r in known["releases"]):
        images = {service: f"{project}-{service}:{state.release}" for service in state.built}
        record = release_record(state.release, source, state.source_revision, commit, images, state.migration_after)
        target = f"{paths.releases}/{state.release}.json"
        yield StringCommand(
            f"mkdir -p {shlex.quote(paths.releases)} && printf '%s\\n' {shlex.quote(json.dumps(record, sort_keys=True))}"
            f" > {shlex.quote(target)} && echo {shlex.quote(state.release)} > {shlex.quote(paths.releases + '/current')}"
            f" && printf '%s %s\\n' {shlex.quote(now())} {shlex.quote(state.release)} >> {shlex.quote(paths.releases + '/history')}"
        )
        known["releases"].append(record)
    for old in prune_plan(known["releases"], state.release, keep):
        images = " ".join(shlex.quote(image) for image in (old.get("images") or {}).values())
        host.log(f"Removing release {old['release']} (keeping the newest {keep})")
        yield StringCommand(
            (f"docker image rm {images} >/dev/null 2>&1; " if images else "")
            + f"rm -f {shlex.quote(paths.releases + '/' + old['release'] + '.json')}"
        )
    if known["current"] == state.release:
        host.noop(f"release {state.release} is recorded")


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
    state = learnt()
    unlock(run_, "ok", state.release, state.source_revision)
    host.noop(f"{run_.action} recorded in the audit log; lock released")
    yield from ()  # a generator that yields no command: no change
