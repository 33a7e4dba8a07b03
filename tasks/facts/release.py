"""Facts about releases, the deploy lock and the audit log (the deploy's own records)."""

from __future__ import annotations

import json

from pyinfra.api import FactBase

from tasks import layout
from tasks.commands import configured, json_lines


class DeployLock(FactBase):
    """
    Returns who holds the server's deploy lock, or None when it is free::

        {"action": "deploy", "operator": "ana@laptop", "since": "2026-11-28T10:02:03Z",
         "release": "3f2a1b9c0d11"}
    """

    def command(self, state_dir=None):
        return (f"d={configured('STATE_DIR', layout.STATE_DIR, state_dir)}; "
                "if [ -d \"$d/deploy.lock\" ]; then cat \"$d/deploy.lock/holder\" 2>/dev/null || echo '{}'; fi")

    def process(self, output):
        records = json_lines(output)
        return records[0] if records else ({"operator": "unknown"} if output else None)


class AuditLog(FactBase):
    """
    Returns the last lines of the server's audit log, oldest first: one record per
    deploy, rollback, restore and lock break::

        [{"time": "...", "action": "deploy", "operator": "ana@laptop", "release": "...",
          "source_revision": "...", "migration_before": ["0001"], "migration_after": ["0002"],
          "result": "ok", "duration_s": 21.4}]
    """

    default = list

    def command(self, state_dir=None, lines=20):
        return (f"d={configured('STATE_DIR', layout.STATE_DIR, state_dir)}; "
                f"tail -n {int(lines)} \"$d/audit.log\" 2>/dev/null || true")

    def process(self, output):
        return json_lines(output)


class Releases(FactBase):
    """
    Returns the releases kept on the server, oldest first, the current one, and the
    order in which releases went live (deploys and rollbacks)::

        {"current": "3f2a1b9c0d11", "releases": [{"release": "...", "created": "...",
          "source_revision": "...", "images": {"api": "srq-hpn-api:3f2a..."},
          "migration_heads": ["0002"], "images_present": True}],
         "history": ["9c0d113f2a1b", "3f2a1b9c0d11"]}
    """

    @staticmethod
    def default():
        return {"current": None, "releases": [], "history": []}

    def command(self, state_dir=None):
        return (
            f"d={configured('STATE_DIR', layout.STATE_DIR, state_dir)}/releases; "
            "echo \"current $(cat \"$d/current\" 2>/dev/null)\"; "
            "sed 's/^/history /' \"$d/history\" 2>/dev/null; "
            # The images there, listed once (not one docker call per release's image).
            "have=$(docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null); "
            "for f in $(ls -1tr \"$d\"/*.json 2>/dev/null); do "
            "record=$(tr -d '\\n' < \"$f\"); images=yes; "
            "for ref in $(printf '%s' \"$record\" | grep -o '\"[^\"]*:[0-9a-f]\\{12\\}\"' | tr -d '\"'); do "
            "printf '%s\\n' \"$have\" | grep -qxF \"$ref\" || images=no; done; "
            "echo \"release $images $record\"; done"
        )

    def process(self, output):
        current, releases, history = None, [], []
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "current":
                current = rest.strip() or None
            elif kind == "history" and len(rest.split()) == 2:
                history.append(rest.split()[1])
            elif kind == "release":
                present, _, text = rest.partition(" ")
                try:
                    record = json.loads(text)
                except ValueError:
                    continue
                record["images_present"] = present == "yes"
                releases.append(record)
        releases.sort(key=lambda r: r.get("created", ""))
        return {"current": current, "releases": releases, "history": history}
