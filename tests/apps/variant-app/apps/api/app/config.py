"""Settings from the environment; the process refuses to start without them."""

import os
import sys


def required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        print(f"harbor: {name} is not set; refusing to start", file=sys.stderr, flush=True)
        raise SystemExit(78)
    return value


DATABASE_URL = required("DATABASE_URL")
