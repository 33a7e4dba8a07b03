"""What visitors see during an update: a bounded request loop through Caddy while the
deploy updates api and web, and while the guide's manual "Deploying Updates" does the
same on a server set up by hand, side by side, in one run.

    .venv/bin/python -m benchmarks.zero_downtime [--requests 1000] [--rate 30]

Two updates each: code changes only, then code changes with a backward-compatible
migration (a nullable column). Prints, per update and per way: requests sent, failed,
the longest gap between two good answers, and what the failures were. Traffic goes
only to the servers' HTTPS ports published on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from benchmarks import guide
from tests.testbed import harness
from tests.testbed.load import RequestLoop

MIGRATION = '''"""events can be archived"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"


def upgrade():
    op.add_column("events", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("events", "archived_at")
'''


def app_version(work: Path, version: int, migration: bool) -> Path:
    app = work / f"app-{version}"
    shutil.copytree(harness.SAMPLE_APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    main = app / "apps/api/app/main.py"
    main.write_text(main.read_text() + f'\n\n@app.get("/api/version")\ndef version():\n    return {{"version": {version}}}\n')
    page = app / "apps/web/server.js"
    page.write_text(page.read_text().replace("<title>srq-hpn</title>", f"<title>srq-hpn v{version}</title>"))
    if migration:
        (app / "apps/api/alembic/versions/0003_archive_events.py").write_text(MIGRATION)
    return app


def under_load(server, ca, requests: int, rate: float, action) -> tuple[RequestLoop, float]:
    """Run `action` two seconds into a request loop that goes on until the action is
    done and at least `requests` requests were sent."""
    loop = RequestLoop(server, ca, paths=("/api/health", "/", "/api/db-health"), rate=rate)
    with loop:
        time.sleep(2)
        started = time.monotonic()
        action()
        took = time.monotonic() - started
        while loop.sent < requests:
            time.sleep(0.2)
    return loop, took


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per update and way (default 1000)")
    parser.add_argument("--rate", type=float, default=30.0, help="requests per second (default 30)")
    options = parser.parse_args(argv)
    ok, detail = harness.docker_available()
    if not ok:
        print(f"needs a Docker engine: {detail}", file=sys.stderr)
        return 2

    work = guide.workdir()
    testbed = harness.Testbed(log=None)
    rows = []
    try:
        testbed.start()
        deployed, by_hand = testbed.start_server("zd-deploy"), testbed.start_server("zd-guide")
        settings = testbed.settings()

        def deploy(app: Path) -> None:
            run = harness.run_pyinfra(deployed.inventory(**{**settings, "srq_hpn_app_local_path": str(app)}),
                                      "deploy.py", "-y")
            if run.returncode != 0:
                raise SystemExit(f"deploy failed:\n{run.describe()}")

        first = app_version(work, 1, migration=False)
        deploy(first)
        guide.publish(by_hand, first, work)
        guide.setup(by_hand, harness.REGISTRY_MIRROR, harness.REGISTRY_HOST)
        cas = {name: harness.caddy_root_ca(server, work / f"{name}.crt")
               for name, server in (("deploy", deployed), ("guide", by_hand))}

        for version, migration, label in ((2, False, "code changes"), (3, True, "code + migration")):
            app = app_version(work, version, migration)
            loop, took = under_load(deployed, cas["deploy"], options.requests, options.rate, lambda: deploy(app))
            rows.append((label, "this deploy", loop, took))
            guide.publish(by_hand, app, work)
            loop, took = under_load(by_hand, cas["guide"], options.requests, options.rate, lambda: guide.update(by_hand))
            rows.append((label, "the guide by hand", loop, took))
    finally:
        testbed.close()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'update':<18} {'way':<18} {'sent':>6} {'failed':>7} {'longest gap':>12} {'update took':>12}  failures")
    for label, way, loop, took in rows:
        errors = ", ".join(f"{kind} x{count}" for kind, count in loop.errors.most_common()) or "-"
        print(f"{label:<18} {way:<18} {loop.sent:>6} {loop.failed:>7} {loop.longest_gap:>11.2f}s {took:>11.1f}s  {errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
