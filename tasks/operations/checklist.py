"""Operations of the checklist and its records: the checklist itself (read-only), and
when each password was last set."""

from __future__ import annotations

from io import StringIO

from pyinfra import host, logger
from pyinfra.api import operation
from pyinfra.operations import files

from tasks import checks, facts, layout, render
from tasks.operations.release import now
from tasks.remote import executing, fail

COLOURS = {checks.PASS: "green", checks.WARN: "yellow", checks.FAIL: "red", checks.CANNOT: "cyan", checks.NOT_APPLICABLE: "blue"}


@operation()
def checklist_passed(domain: str, deploy_env_sha256: str = ""):
    """
    Ensure the server passes the guide's Production Checklist: one line per item,
    with its status (pass, warn, fail, cannot-check) and the evidence; fails when
    any item fails. Reads only: nothing on the server changes.

    + domain: the domain the settings name (the server's DOMAIN must be this one)
    + deploy_env_sha256: the sha256 of the deploy.env the settings make: the first line
      warns when the server's differs (its checks judge with the last deploy's values)

    Example:

    .. code:: python

        checklist_passed(name="Ensure the server passes the Production Checklist", domain="example.com")
    """
    if not executing():
        host.noop("the checklist is run when the operations are")
        return
    results = host.get_fact(facts.Checklist, domain=domain, deploy_env_sha256=deploy_env_sha256)
    section = None
    for result in results:
        if result["section"] != section:
            section = result["section"]
            host.log_styled(section, bold=True)
        host.log_styled("  " + checks.line(result), fg=COLOURS[result["status"]], log_func=logger.info)
    failed = [r["item"] for r in results if r["status"] == checks.FAIL]
    counted = results[1:] if len(results) > 1 else results  # the programs line is not an item of the guide
    verdict = f"Production Checklist of {domain}: {checks.summary(counted)}"
    if failed:
        yield from fail(f"{verdict}; failing: {', '.join(failed)}")
        return
    host.log_styled(verdict, bold=True)
    host.noop(verdict)


@operation()
def passwords_recorded(paths: layout.Paths, changed: list[str]):
    """
    Ensure the server records when each password was last set (names and times, never
    values), for the checklist's password age.

    + paths: the server's app and state directories
    + changed: the passwords this run sets to a new value
    """
    if not changed:
        host.noop("no password changes in this run")
        return
    current = host.get_fact(facts.SecretsRecord, path=paths.secrets_record)
    text = render.secrets_record(current, changed, now())
    yield from files.put._inner(src=StringIO(text), dest=paths.secrets_record, mode="600")
