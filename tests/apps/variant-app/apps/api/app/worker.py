"""The worker: records a heartbeat in the database every 2 seconds.

    python3 -m app.worker           run
    python3 -m app.worker --check   exit 0 if the last heartbeat is recent (healthcheck)
"""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

STAMP = Path("/srv/api/run/heartbeat")


def check() -> int:
    try:
        return 0 if time.time() - STAMP.stat().st_mtime < 15 else 1
    except FileNotFoundError:
        return 1


def run() -> int:
    from sqlalchemy import create_engine, text

    from app.config import DATABASE_URL

    engine = create_engine(DATABASE_URL, pool_pre_ping=True)
    name = socket.gethostname()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print(f"worker {name} started", flush=True)
    while not stop:
        try:
            with engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO heartbeats (worker, beat_at) VALUES (:w, now()) "
                         "ON CONFLICT (worker) DO UPDATE SET beat_at = now()"),
                    {"w": name},
                )
            STAMP.touch()
        except Exception as exc:  # noqa: BLE001 - keep beating; the healthcheck tells
            print(f"heartbeat failed: {type(exc).__name__}", file=sys.stderr, flush=True)
        time.sleep(2)
    print("worker stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(check() if "--check" in sys.argv[1:] else run())
