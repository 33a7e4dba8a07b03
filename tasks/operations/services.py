"""Operations that bring the stack's services to the release, and check it answers."""

from __future__ import annotations

import time

from pyinfra import host
from pyinfra.api import StringCommand, operation

from tasks import facts, layout
from tasks.commands import program, quote
from tasks.operations.plan import later
from tasks.plan import Plan
from tasks.remote import executing, fail


@operation()
def standing_by(plan: Plan):
    """
    Ensure a standby of each upstream the rollout swaps (api, web) runs beside it, before
    the release changes anything: its running version, as a one-off container that gets
    ready while the release builds, and serves while the new version boots under the
    service's own name (one boot on the way, and none dropped request).

    + plan: this run's plan (tasks.plan.Plan): the services it swaps
    """
    if plan.awaits_fetch:
        host.noop("the services to swap are known once the release is fetched: their standbys start at the swap")
        return
    if not plan.rollout.swap:
        host.noop("nothing is swapped: no standby")
        return
    yield StringCommand(program("srq-hpn-rollout", "--standby", *plan.rollout.swap))


@operation()
def rolled_out(paths: layout.Paths, plan: Plan):
    """
    Ensure every service but the database runs the release's configuration and images,
    as the plan decided: api and web swapped without dropping a request, the app's
    other services (a worker) created or recreated and waited for, Caddy recreated last
    (or created with the others on a first deploy); a changed Caddyfile is reloaded in
    place. The server's program carries out that order; it decides nothing again.

    + paths: the server's app and state directories
    + plan: this run's plan (tasks.plan.Plan): the rollout and whether Caddy reloads
    """
    if plan.awaits_fetch:
        yield from later("the services to bring up once the release is fetched")
        return
    if plan.rollout.services:
        host.log(f"Bringing up: {plan.rollout.words()}")
        yield StringCommand(program("srq-hpn-rollout", *plan.rollout.arguments()))
    if plan.reload_caddy:
        caddyfile = plan.caddyfile_in_container or f"{layout.CADDY_CONFIG_DIR}/Caddyfile"
        yield StringCommand(quote("docker", "exec", plan.container(layout.CADDY), "caddy", "reload", "--config",
                                  caddyfile, "--adapter", "caddyfile"))
    if not plan.rollout.services and not plan.reload_caddy:
        host.noop("every service runs the release's configuration and images")


@operation()
def maintenance_page_off(plan: Plan):
    """
    Ensure Caddy's maintenance page is off: a restore killed before it could put
    everything back (SIGKILL, a reboot) leaves it on, and Caddy then answers 503 to
    every request. Nothing is done when it is off.

    + plan: this run's plan (tasks.plan.Plan): whether the page is on
    """
    if plan.maintenance_page_on:
        host.log("Caddy's maintenance page is on (a restore that did not finish left it): turning it off")
        yield StringCommand(program("srq-hpn-maintenance", "off"))
    else:
        host.noop("Caddy's maintenance page is off")


def failed_checks(results: dict, domain: str) -> list[str]:
    """Which stack checks failed, each with what came back (pure; unit-tested)."""
    problems = []

    def answer(name):
        result = results.get(name, {"status": 0, "body": "no answer"})
        return result["status"], result["body"]

    status, body = answer("/")
    if status != 200:
        problems.append(f"https://{domain}/ answered {status} (wanted 200): {body[:200]}")
    status, body = answer("/api/health")
    if status != 200 or body.replace(" ", "") != '{"ok":true,"service":"api"}':
        problems.append(
            f'https://{domain}/api/health answered {status} {body[:200]!r} (wanted 200 {{"ok":true,"service":"api"}})'
        )
    status, body = answer("/api/db-health")
    if status != 200 or '"db_ok":true' not in body.replace(" ", ""):
        problems.append(f"https://{domain}/api/db-health answered {status} {body[:200]!r} (wanted db_ok: true)")
    status, body = answer("http-redirect")
    if status not in (301, 302, 307, 308) or not body.startswith(f"https://{domain}"):
        problems.append(f"http://{domain}/ answered {status} {body!r} (wanted a redirect to https://{domain}/)")
    return problems


@operation()
def stack_answers(domain: str, tls_internal: bool, timeout: int, caddy: str | None = None, poll: float = 0.25):
    """
    Ensure the stack answers through Caddy, on the server itself.

    + domain: the site's host name (requests go to 127.0.0.1 with this name)
    + tls_internal: verify TLS against Caddy's internal CA instead of the system's
    + timeout: seconds to keep trying before failing with each failed check
    + caddy: Caddy's container (default: the one the server's stack.env names)

    Changes nothing; fails the deploy naming every check that failed and what came back.
    """
    if not executing():
        host.noop("the stack is checked when the deploy runs")
        return
    started = time.monotonic()
    while True:
        results = host.get_fact(facts.StackHealth, domain=domain, tls_internal=tls_internal, caddy_container=caddy)
        problems = failed_checks(results, domain)
        elapsed = time.monotonic() - started
        if not problems:
            host.noop(f"https://{domain}/ answers: /, /api/health, /api/db-health and HTTP redirect")
            return
        if elapsed >= timeout:
            yield from fail(f"The stack did not pass its checks within {timeout}s:\n" + "\n".join(
                f"  - {problem}" for problem in problems
            ) + "\nhint: docker compose --env-file .env.production logs caddy api web (in the app directory)")
            return
        if int(elapsed) % 5 == 0:
            host.log(f"Waiting for the stack to answer ({len(problems)} check(s) pending, {elapsed:.0f}s of {timeout}s)")
        time.sleep(poll)

