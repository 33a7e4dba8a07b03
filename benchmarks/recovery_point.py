"""The recovery point: how many committed rows are lost with the server's disk, when the
database is recovered to a point in time from the off-server copy on a new server.

    .venv/bin/python -m benchmarks.recovery_point [--rounds 1] [--minutes 3]

Each round, on servers of its own: server A deployed with the off-server copy on (a
backup host of the testbed, restic over SFTP, RESTIC_PASSWORD generated once per run),
one row a second written through Caddy (POST /api/events) for `--minutes` minutes and a
random part of a minute more (so that the loss falls on no boundary of the archive or of
the copy), each row's title kept with the moment the api acknowledged it. Then the disk
is lost: the writer stops, and server A is killed and removed at once, with its Docker
volume (the database) and its backup directory. Server B, new, is deployed with the same
settings and password, and `restore.py --data restore_time=latest --data
restore_from=offsite` recovers the database there. Counted on B: the rows written
(acknowledged), the rows recovered, the rows missing (and of them, any older than the
newest row recovered: there should be none), and the recovery point (the loss's moment,
the last acknowledgement, minus the acknowledgement of the newest row recovered); with
the time the restore took, the settings (backup_wal_timeout, the copy's interval), and
per round the line in which the restore says what it recovered. Figures are printed,
never judged. Traffic goes only to ports the servers publish on 127.0.0.1; the copy
travels on the testbed's network.
"""

from __future__ import annotations

import argparse
import random
import re
import runpy
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import guide
from tasks import layout
from tests.testbed import harness

BACKUP_USER = "srqbackup"
PREFIX = "rpo"


class Writer(threading.Thread):
    """One row a second through Caddy; `acked`: [(title, moment acknowledged)]."""

    def __init__(self, server: harness.Server, ca: Path, round_: int) -> None:
        super().__init__(daemon=True)
        self.server, self.ca, self.round_ = server, ca, round_
        self.acked: list[tuple[str, float]] = []
        self.failed: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        number = 0
        while not self.stop.is_set():
            title = f"{PREFIX}-{self.round_}-{number:05d}"
            try:
                answer = harness.https_get(self.server, "/api/events", self.ca, method="POST",
                                           headers={"Content-Type": "application/json"},
                                           body=f'{{"title": "{title}", "starts_at": "2026-06-01T18:00:00Z"}}'.encode(),
                                           timeout=10)
                if answer.status == 201:
                    self.acked.append((title, time.time()))
                else:
                    self.failed.append(f"{title}: HTTP {answer.status}")
            except OSError as error:
                self.failed.append(f"{title}: {type(error).__name__}: {error}")
            number += 1
            self.stop.wait(max(0.0, started + number - time.monotonic()))


@dataclass
class Loss:
    written: int
    recovered: int
    missing: int
    gaps: int
    unacknowledged_recovered: int
    recovery_point: float | None
    restore_seconds: float
    wrote_seconds: float
    failed_writes: int
    deploy_b_seconds: float
    restored_line: str


@dataclass
class Tally:
    recovered: int
    missing: int
    gaps: int  # missing rows older than the newest recovered one (none, if the recovery is whole)
    unacknowledged: int  # recovered rows never acknowledged
    recovery_point: float | None  # the loss's moment minus the newest recovered row's acknowledgement


def tally(acked: list[tuple[str, float]], present: set[str], loss: float) -> Tally:
    """The rows acknowledged ([(title, moment)]) against the titles found after the restore."""
    acknowledged = {title for title, _ in acked}
    recovered = [moment for title, moment in acked if title in present]
    newest = max(recovered, default=None)
    return Tally(
        recovered=len(recovered),
        missing=len(acknowledged - present),
        gaps=0 if newest is None else sum(1 for title, moment in acked if title not in present and moment < newest),
        unacknowledged=len(present - acknowledged),
        recovery_point=None if newest is None else loss - newest,
    )


def psql(server: harness.Server, sql: str) -> str:
    _, out = server.exec(["docker", "exec", layout.CONTAINERS[layout.DB], "psql", "-X", "-tA", "-U", "srq_hpn",
                          "-d", "srq_hpn", "-c", sql])
    return out.strip()


def backup_host(testbed: harness.Testbed, key: Path) -> tuple[harness.Server, str]:
    """The testbed's backup host (an SFTP account holding `key`); returns it and its host key."""
    host = testbed.start_server("rpo-backup-host")
    host.exec(
        f"useradd -m -s /bin/bash {BACKUP_USER} && install -d -m 700 -o {BACKUP_USER} -g {BACKUP_USER} "
        f"/home/{BACKUP_USER}/.ssh && printf '%s\\n' '{key.with_suffix('.pub').read_text().strip()}' "
        f"> /home/{BACKUP_USER}/.ssh/authorized_keys && chown {BACKUP_USER}: /home/{BACKUP_USER}/.ssh/authorized_keys "
        f"&& chmod 600 /home/{BACKUP_USER}/.ssh/authorized_keys"
    )
    return host, host.exec("cat /etc/ssh/ssh_host_ed25519_key.pub")[1].strip()


def run(server: harness.Server, settings: dict, env: dict, *args: str) -> harness.PyinfraRun:
    done = harness.run_pyinfra(server.inventory(**settings), *args, env=env)
    if done.returncode != 0:
        raise SystemExit(f"pyinfra {' '.join(args)} failed on {server.name}:\n{done.describe()}")
    return done


def one_loss(testbed: harness.Testbed, round_: int, settings: dict, env: dict, seconds: float,
             work: Path, log) -> Loss:
    a = testbed.start_server(f"rpo-a{round_}")
    run(a, settings, env, "deploy.py", "-y")
    ca = harness.caddy_root_ca(a, work / f"a{round_}.crt")
    writer = Writer(a, ca, round_)
    log(f"round {round_}: writing one row a second to {a.name} for {seconds:.1f} s")
    began = time.monotonic()
    writer.start()
    time.sleep(seconds)
    # The disk is lost now: the writer stops, the server is killed and removed with its volumes.
    writer.stop.set()
    writer.join()
    a.container.kill()
    wrote = time.monotonic() - began
    loss = writer.acked[-1][1]
    a.remove()
    testbed.servers.remove(a)
    log(f"round {round_}: {len(writer.acked)} rows acknowledged, server A gone; a new server B")

    b = testbed.start_server(f"rpo-b{round_}")
    try:
        started = time.monotonic()
        run(b, settings, env, "deploy.py", "-y")
        deployed = time.monotonic() - started
        started = time.monotonic()
        restored = run(b, settings, env, "restore.py", "--data", "restore_time=latest", "--data",
                       "restore_from=offsite", "--data", f"restore_confirm={harness.DOMAIN}", "-y")
        took = time.monotonic() - started
        for text in restored.output.splitlines():
            if "Plan: the database at" in text:
                log(f"round {round_}: the restore's {text.strip()[text.strip().index('Plan:'):]}")
        line = next((line.strip() for line in restored.output.splitlines() if "recovered to" in line), "")
        present = set(psql(b, f"SELECT title FROM events WHERE title LIKE '{PREFIX}-{round_}-%'").split())
    finally:
        b.remove()
        testbed.servers.remove(b)
    counted = tally(writer.acked, present, loss)
    return Loss(
        written=len(writer.acked),
        recovered=counted.recovered,
        missing=counted.missing,
        gaps=counted.gaps,
        unacknowledged_recovered=counted.unacknowledged,
        recovery_point=counted.recovery_point,
        restore_seconds=took,
        wrote_seconds=wrote,
        failed_writes=len(writer.failed),
        deploy_b_seconds=deployed,
        restored_line=re.sub(r"^.*?recovered to", "recovered to", line),
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="losses, each on new servers (default 1)")
    parser.add_argument("--minutes", type=float, default=3.0,
                        help="minutes of writing before the loss, plus a random part of a minute (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the loss moments (default: random)")
    options = parser.parse_args(argv)
    ok, detail = harness.docker_available()
    if not ok:
        print(f"needs a Docker engine: {detail}", file=sys.stderr)
        return 2
    chance = random.Random(options.seed)

    work = guide.workdir()
    testbed = harness.Testbed(log=None)
    losses: list[Loss] = []
    try:
        testbed.start()
        key = harness.generate_ssh_key(work / "offsite-key")
        _, host_key = backup_host(testbed, key)
        host_alias = testbed.servers[-1].network_alias
        password = subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        env = {"RESTIC_PASSWORD": password}
        defaults = testbed.settings()
        for round_ in range(1, options.rounds + 1):
            # A repository per round: the copy a round recovers is that round's server A's only.
            settings = testbed.settings(
                backup_offsite_repository=f"sftp:{BACKUP_USER}@{host_alias}:/home/{BACKUP_USER}/restic-{round_}",
                backup_offsite_ssh_key=str(key), backup_offsite_host_key=host_key)
            seconds = options.minutes * 60 + chance.uniform(0, 60)
            loss = one_loss(testbed, round_, settings, env, seconds, work, log=print)
            losses.append(loss)
            print(f"round {round_}: {loss.restored_line or '(the restore named no recovery)'}", flush=True)
    finally:
        testbed.close()
        shutil.rmtree(work, ignore_errors=True)

    wal_timeout = defaults.get("backup_wal_timeout",
                               runpy.run_path(str(harness.REPO_ROOT / "group_data" / "all.py"))["backup_wal_timeout"])
    print(f"\nsettings: backup_wal_timeout {wal_timeout} s, off-server copy every {layout.WAL_SHIP_INTERVAL} s "
          "(srq-hpn-wal-ship.timer)")
    print(f"{'round':>5} {'written':>8} {'recovered':>10} {'missing':>8} {'of them older':>14} {'recovery point':>15} "
          f"{'restore took':>13} {'B deployed in':>14}  failed writes")
    for number, loss in enumerate(losses, 1):
        point = f"{loss.recovery_point:.1f}s" if loss.recovery_point is not None else "-"
        print(f"{number:>5} {loss.written:>8} {loss.recovered:>10} {loss.missing:>8} {loss.gaps:>14} {point:>15} "
              f"{loss.restore_seconds:>12.1f}s {loss.deploy_b_seconds:>13.1f}s  {loss.failed_writes}")
    points = [loss.recovery_point for loss in losses if loss.recovery_point is not None]
    if points:
        print(f"recovery point: median {statistics.median(points):.1f} s, worst {max(points):.1f} s "
              f"(goal: at most 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
