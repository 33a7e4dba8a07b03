"""Facts of the guide's Production Checklist: the items checked on the server, and the
deploy's record of when each password was set."""

from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase

from tasks import checks, layout
from tasks.commands import configured, program
from tasks.digest import sha256
from tasks.render import server_programs

PROGRAMS_MARK = "@program"
CONFIG_MARK = "@config"


class Checklist(FactBase):
    """
    Returns the guide's Production Checklist as checked on the server (read-only; no
    secret is printed), one entry per item in the guide's order, after a first entry
    saying whether the server's check programs are this deploy's::

        [{"item": "db_port", "section": "Security", "title": "Database port (5432) not exposed",
          "status": "pass", "not_set_up": False,
          "evidence": "5432 on 127.0.0.1 only (srq-hpn-db 127.0.0.1:5432->5432/tcp); ..."}, ...]

    ``status`` is pass, warn, fail or cannot-check; ``not_set_up`` marks a warn for
    something not installed (backups, monitoring). ``domain``: the domain the
    settings name (default: the one deployed); ``deploy_env_sha256``: the sha256 of the
    deploy.env the settings make (the first entry warns when the server's differs).
    """

    default = list

    def command(self, domain="", deploy_env_sha256=""):
        self.deploy_env_sha256 = deploy_env_sha256
        names = " ".join(shlex.quote(name) for name in sorted(server_programs()))
        domain_args = ("--domain", domain) if domain else ()
        run = program("srq-hpn-check", *domain_args, *(item.key for item in checks.ITEMS))
        return (
            f"if [ -x {layout.LIB_DIR}/srq-hpn-check ] && [ -r {layout.DEPLOY_ENV} ]; then "
            f"(cd {layout.LIB_DIR} && for f in {names}; do "
            f"echo \"{PROGRAMS_MARK} $f $(sha256sum < \"$f\" 2>/dev/null | cut -c1-64)\"; done); "
            f"echo \"{CONFIG_MARK} $(sha256sum < {layout.DEPLOY_ENV} | cut -c1-64)\"; "
            f"{run} 2>/dev/null || true; "
            f"else echo '{PROGRAMS_MARK}'; fi"
        )

    def process(self, output):
        installed, records, configured = {}, [], None
        for line in output:
            if line.startswith(PROGRAMS_MARK):
                name, _, digest = line[len(PROGRAMS_MARK):].strip().partition(" ")
                if name:
                    installed[name] = digest.strip()
                continue
            if line.startswith(CONFIG_MARK):
                configured = line[len(CONFIG_MARK):].strip()
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        record = programs_record(installed)
        wanted = getattr(self, "deploy_env_sha256", "")
        if installed and wanted and configured != wanted and record["status"] == checks.PASS:
            record = {"status": checks.WARN,
                      "evidence": f"{layout.DEPLOY_ENV} differs from what your settings make of it: the checks below "
                                  "judge with the server's own values (the last deploy's; deploy to apply yours)"}
        programs = checks.entry(checks.PROGRAMS, record)
        if not installed:
            return [programs]
        return [programs, *checks.ordered(records)]


def programs_record(installed: dict[str, str]) -> dict:
    """Whether the server's programs are the ones this repository ships (by sha256)."""
    if not installed:
        return {"status": checks.FAIL, "evidence": f"{layout.LIB_DIR}/srq-hpn-check is not installed: deploy first "
                                                   "(pyinfra inventory.py deploy.py)"}
    local = {name: sha256(text) for name, text in server_programs().items()}
    differ = sorted(name for name, digest in local.items() if installed.get(name) != digest)
    if differ:
        return {"status": checks.WARN,
                "evidence": f"{', '.join(differ)} in {layout.LIB_DIR} differ from this deploy's: the checks below are "
                            "the server's own version (deploy to update them)"}
    return {"status": checks.PASS, "evidence": f"{len(local)} programs in {layout.LIB_DIR}, as this deploy ships them"}


class SecretsRecord(FactBase):
    """Returns when the deploy last set each password, by name (never a value)::

        {"POSTGRES_PASSWORD": "2026-11-28T10:02:03Z", "POSTGRES_APP_PASSWORD": "2026-11-28T10:02:03Z"}
    """

    default = dict

    def command(self, path=None):
        where = shlex.quote(path) if path else f"{configured('STATE_DIR', layout.STATE_DIR)}/secrets.json"
        return f"cat {where} 2>/dev/null || true"

    def process(self, output):
        try:
            record = json.loads("\n".join(output) or "{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}
