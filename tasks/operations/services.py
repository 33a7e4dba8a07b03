"""Operations that bring the stack's services to the release, and check it answers."""

from __future__ import annotations

import time
from dataclasses import replace

from pyinfra import host
from pyinfra.api import FunctionCommand, StringCommand, operation

from tasks import acme as acme_words
from tasks import facts, group, layout
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
    in_group = executing() and group.is_group(host.state.inventory)
    if in_group:  # one app server after the other, in the inventory's order
        group.take_turn(host.state, group.SWAP_STEP, host.name)
    try:
        yield from _roll_out(plan)
    finally:
        if in_group:
            group.turn_done(group.SWAP_STEP, host.name)


def _roll_out(plan: Plan):
    if plan.awaits_fetch:
        yield from later("the services to bring up once the release is fetched")
        return
    if executing() and group.stopped():
        # A group's servers are swapped one after the other: after a failure, the others keep their release.
        yield from fail(f"Not swapping {host.name}: the rollout stopped ({group.stopped()}); it keeps release "
                        f"{plan.current_release or '(none)'}")
        return
    if plan.rollout.services:
        host.log(f"Bringing up: {plan.rollout.words()}")
        yield StringCommand(program("srq-hpn-rollout", *plan.rollout.arguments()))
        yield FunctionCommand(_swapped, (), {})
    if plan.reload_caddy:
        caddyfile = plan.caddyfile_in_container or f"{layout.CADDY_CONFIG_DIR}/Caddyfile"
        # --force: Caddy loads its configuration again even when the Caddyfile is the same
        # (it then reads the ACME root again, and asks again for a certificate it has not got).
        yield StringCommand(quote("docker", "exec", plan.container(layout.CADDY), "caddy", "reload", "--config",
                                  caddyfile, "--adapter", "caddyfile", "--force"))
    if not plan.rollout.services and not plan.reload_caddy:
        host.noop("every service runs the release's configuration and images")


def _swapped(state, host) -> bool:  # noqa: ARG001 - pyinfra passes both, by these names
    group.swapped(host.name)
    return True


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


def app_problems(results: dict, base: str) -> list[str]:
    """Which of the app's checks failed, each with what came back (pure; unit-tested):
    ``/`` answers 200, ``/api/health`` the api's health, ``/api/db-health`` db_ok;
    ``base`` the URL they were asked at."""
    problems = []

    def answer(name):
        result = results.get(name, {"status": 0, "body": "no answer"})
        return result["status"], result["body"]

    status, body = answer("/")
    if status != 200:
        problems.append(f"{base}/ answered {status} (wanted 200): {body[:200]}")
    status, body = answer("/api/health")
    if status != 200 or body.replace(" ", "") != '{"ok":true,"service":"api"}':
        problems.append(
            f'{base}/api/health answered {status} {body[:200]!r} (wanted 200 {{"ok":true,"service":"api"}})'
        )
    status, body = answer("/api/db-health")
    if status != 200 or '"db_ok":true' not in body.replace(" ", ""):
        problems.append(f"{base}/api/db-health answered {status} {body[:200]!r} (wanted db_ok: true)")
    return problems


def redirect_problem(results: dict, domain: str) -> list[str]:
    status, body = results.get("http-redirect", {"status": 0, "body": "no answer"}).values()
    if status not in (301, 302, 307, 308) or not body.startswith(f"https://{domain}"):
        return [f"http://{domain}/ answered {status} {body!r} (wanted a redirect to https://{domain}/)"]
    return []


def failed_checks(results: dict, domain: str, plain: str | None = None) -> list[str]:
    """Which stack checks failed, each with what came back (pure; unit-tested); ``plain``: an app
    server behind the edge, checked over plain HTTP there (the edge redirects HTTP, not it)."""
    if plain:
        return app_problems(results, plain)
    return app_problems(results, f"https://{domain}") + redirect_problem(results, domain)


def without_certificate(results: dict, domain: str) -> bool:
    """Whether the checks say Caddy runs (HTTP redirects) but answers no HTTPS at all: what it
    does while it has no certificate for the domain (pure; unit-tested)."""
    return not redirect_problem(results, domain) and all(
        results.get(path, {"status": 0})["status"] == 0 for path in ("/", "/api/health", "/api/db-health"))


def app_up_words(results: dict, upstreams: dict) -> str:
    """The app's answers without TLS, in words (they all passed)."""
    return (f"checked on this server without TLS, {upstreams.get(layout.WEB, layout.WEB)} answers / with "
            f"{results['/']['status']}, {upstreams.get(layout.API, layout.API)} answers /api/health and "
            "/api/db-health (db_ok: true)")


@operation()
def stack_answers(domain: str, tls_internal: bool, timeout: int, plan: Plan | None = None, poll: float = 0.25,
                  ca_file: str | None = None, acme: acme_words.Context | None = None, plain: str | None = None,
                  caddy_container: str | None = None):
    """
    Ensure the stack answers through Caddy, on the server itself.

    + domain: the site's host name (requests go to 127.0.0.1 with this name)
    + tls_internal: verify TLS against Caddy's internal CA instead of the system's
    + timeout: seconds to keep trying before failing with each failed check
    + plan: this run's plan (tasks.plan.Plan): the stack's containers (default: the ones
      the server's stack.env names)
    + ca_file: verify TLS against the root certificates in this file on the server (a
      private ACME server's) instead of the system's
    + acme: the ACME server Caddy gets the certificate from (``tasks.acme.Context``): when
      Caddy reports that it could not get one while the app answers without TLS, the deploy
      stops at once, saying why and what to do
    + plain: an app server behind the edge: the checks over plain HTTP at this base URL
    + caddy_container: the Caddy whose internal CA is trusted (the edge's), instead of the stack's

    Changes nothing; fails the deploy naming every check that failed and what came back.
    """
    if not executing():
        host.noop("the stack is checked when the deploy runs")
        return
    started, said = time.monotonic(), -1
    known = plan is not None and plan.known  # on a first deploy, completed during the run
    caddy = caddy_container or (plan.container(layout.CADDY) if known else None)
    caddy_container = caddy or layout.CONTAINERS[layout.CADDY]
    upstreams = {service: plan.container(service) if known else layout.CONTAINERS[service]
                 for service in layout.UPSTREAMS}
    while True:
        results = host.get_fact(facts.StackHealth, domain=domain, tls_internal=tls_internal, caddy_container=caddy,
                                ca_file=ca_file, plain=plain)
        problems = failed_checks(results, domain, plain)
        elapsed = time.monotonic() - started
        if not problems:
            host.noop(f"{plain} answers for {domain}: /, /api/health and /api/db-health" if plain else
                      f"https://{domain}/ answers: /, /api/health, /api/db-health and HTTP redirect")
            return
        attempt = None
        if acme is not None and not plain and without_certificate(results, domain):
            attempt = acme_words.last_attempt(
                host.get_fact(facts.CaddyAcmeLog, container=caddy_container, domain=domain), domain)
        if attempt is not None and attempt.state == acme_words.FAILED:
            inside = host.get_fact(facts.AppWithoutTls, api_container=upstreams[layout.API],
                                   web_container=upstreams[layout.WEB])
            if not app_problems(inside, "http://"):
                yield from no_certificate(attempt, acme, caddy_container, app_up_words(inside, upstreams))
                return
        if elapsed >= timeout:
            lines = [f"The stack did not pass its checks within {timeout}s:"] + [f"  - {p}" for p in problems]
            if attempt is not None and attempt.state in (acme_words.FAILED, acme_words.OBTAINING):
                lines.append(f"Caddy {'could not get' if attempt.state == acme_words.FAILED else 'is still getting'} "
                             f"a certificate for {domain} from {acme.acme_server}; its last lines about it:")
                lines += [f"  | {acme_words.log_line(entry)}" for entry in (attempt.shown or attempt.lines)[-6:]]
            lines.append("hint: docker compose --env-file .env.production logs caddy api web (in the app directory)")
            yield from fail("\n".join(lines))
            return
        if int(elapsed // 5) != said:  # one line every 5 s at most
            said = int(elapsed // 5)
            getting = (f": Caddy is getting a certificate for {domain} from {acme.acme_server}"
                       if attempt is not None and attempt.state == acme_words.OBTAINING else "")
            host.log(f"Waiting for the stack to answer ({len(problems)} check(s) pending{getting}, "
                     f"{elapsed:.0f}s of {timeout}s)")
        time.sleep(poll)


def no_certificate(attempt: acme_words.Attempt, context: acme_words.Context, caddy: str, app_up: str):
    """Fail the deploy explaining that the site has no certificate, why, and what to do."""
    addresses = host.get_fact(facts.DomainAddresses, domain=context.domain)["server"]
    context = replace(context, addresses=tuple(addresses))
    lines, last_words = acme_words.explanation(attempt, context, caddy, app_up)
    yield from fail("\n".join(lines), last_words=last_words)
