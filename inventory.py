"""Hosts of the srq-hpn deploy. None are written here: they come from the
operator's environment or from an untracked file.

- ``SRQ_HPN_PRODUCTION_HOSTS``: comma-separated production hosts, each
  ``[user@]host[:port]`` (e.g. ``root@203.0.113.10`` or ``deploy@example.com:2222``).
- ``SRQ_HPN_INVENTORY``: path of a JSON file ``{"group": [["host", {data}], ...]}``;
  defaults to ``inventory.local.json`` (untracked), then to ``.sandbox/inventory.json``,
  which ``python -m tests.testbed.sandbox up`` writes for the local sandbox.

Groups: ``production`` and ``sandbox`` (select one with ``--limit sandbox``).
"""

import json
import os
import sys
from pathlib import Path

from tasks import preflight

_ROOT = Path(__file__).resolve().parent


def _parse_host(spec: str):
    data = {}
    if "@" in spec:
        data["ssh_user"], spec = spec.split("@", 1)
    if spec.count(":") == 1:
        spec, port = spec.split(":")
        data["ssh_port"] = int(port)
    return (spec, data) if data else spec


def _from_file():
    named = os.environ.get("SRQ_HPN_INVENTORY")
    candidates = [Path(named)] if named else [_ROOT / "inventory.local.json", _ROOT / ".sandbox" / "inventory.json"]
    for path in candidates:
        if path.is_file():
            return {group: [tuple(host) if isinstance(host, list) else host for host in hosts]
                    for group, hosts in json.loads(path.read_text()).items()}
        if named:
            raise FileNotFoundError(f"SRQ_HPN_INVENTORY names {path}, which does not exist")
    return {}


_groups = _from_file()
_env_hosts = [h.strip() for h in os.environ.get("SRQ_HPN_PRODUCTION_HOSTS", "").split(",") if h.strip()]

production = [_parse_host(h) for h in _env_hosts] + _groups.pop("production", [])
sandbox = _groups.pop("sandbox", [])
globals().update(_groups)

# Bad input to a deploy, rollback, restore, drill or checklist is refused before any connection.
preflight.before_connecting(sys.argv[1:])

if not (production or sandbox or _groups):
    print(
        "inventory.py: no hosts. Set SRQ_HPN_PRODUCTION_HOSTS=[user@]host[:port],... or SRQ_HPN_INVENTORY=file.json, "
        "or start the local sandbox: python -m tests.testbed.sandbox up",
        file=sys.stderr,
    )
