"""Operations that bring the stack's services to the release, and check it answers."""

from __future__ import annotations

import time

from pyinfra import host
from pyinfra.api import StringCommand, operation

from tasks import facts, layout
from tasks.appspec import container_names
from tasks.commands import program, quote
from tasks.remote import executing, fail
from tasks.runtime import learnt


def finished_job(service: str, info: dict) -> bool:
    """A one-shot service of the app's own that ran and exited 0 (not one of the guide's)."""
    return service not in layout.SERVICES and info.get("state") == "exited" and info.get("exit_code") == 0


def stale_services(containers: dict, services: list[str]) -> dict[str, str]:
    """Which of ``services`` need `docker compose up`, and why (pure; unit-tested)."""
    stale = {}
    for service in services:
        info = containers.get(service)
        if not info or info.get("state") == "missing":
            stale[service] = "not created"
        elif info["state"] != "running" and not finished_job(service, info):
            stale[service] = info["state"]
        elif info.get("expected_hash") and info.get("config_hash") != info["expected_hash"]:
            stale[service] = "configuration changed"
        elif not info.get("image_current", True):
            stale[service] = "image changed"
    return stale


def rollout_order(services: list[str]) -> list[str]:
    """Caddy's upstreams first, then the other services, Caddy last (pure; unit-tested)."""
    upstreams = [s for s in services if s in layout.UPSTREAMS]
    others = sorted(s for s in services if s not in layout.UPSTREAMS and s not in (layout.CADDY, layout.DB))
    return upstreams + others + ([layout.CADDY] if layout.CADDY in services else [])


@operation()
def rolled_out(paths: layout.Paths, caddyfile_changed=lambda: False):
    """
    Ensure every service but the database runs the release's configuration and
    images: api and web swapped without dropping a request, the app's other services
    (a worker) recreated and waited for, Caddy created when missing and otherwise
    left running; a changed Caddyfile is reloaded in place.

    + paths: the server's app and state directories
    + caddyfile_changed: a function telling whether this run changed the Caddyfile
    """
    if not executing():
        host.noop("the services are brought up when the deploy runs")
        return
    config = learnt().config or {}
    project = config.get("name") or "srq-hpn"
    containers = host.get_fact(facts.StackContainers, app_dir=paths.app_dir, project=project)
    services = [name for name in containers if name != layout.DB]
    stale = stale_services(containers, services)
    if stale:
        host.log("Bringing up: " + ", ".join(f"{service} ({why})" for service, why in stale.items()))
        yield StringCommand(program("srq-hpn-rollout", *rollout_order(list(stale))))
    if layout.CADDY not in stale and caddyfile_changed():
        caddy = containers.get(layout.CADDY, {}).get("name", layout.CONTAINERS[layout.CADDY])
        caddyfile = learnt().caddyfile_in_container or f"{layout.CADDY_CONFIG_DIR}/Caddyfile"
        yield StringCommand(
            quote("docker", "exec", caddy, "caddy", "reload", "--config", caddyfile, "--adapter", "caddyfile")
        )
    if not stale and not caddyfile_changed():
        host.noop("every service runs the release's configuration and images")


@operation()
def maintenance_page_off():
    """
    Ensure Caddy's maintenance page is off: a restore killed before it could put
    everything back (SIGKILL, a reboot) leaves it on, and Caddy then answers 503 to
    every request. Nothing is done when it is off.
    """
    if not executing():
        host.noop("Caddy's maintenance page is checked when the deploy runs")
        return
    if host.get_fact(facts.MaintenancePage):
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
def stack_answers(domain: str, tls_internal: bool, timeout: int, poll: float = 0.25):
    """
    Ensure the stack answers through Caddy, on the server itself.

    + domain: the site's host name (requests go to 127.0.0.1 with this name)
    + tls_internal: verify TLS against Caddy's internal CA instead of the system's
    + timeout: seconds to keep trying before failing with each failed check

    Changes nothing; fails the deploy naming every check that failed and what came back.
    """
    if not executing():
        host.noop("the stack is checked when the deploy runs")
        return
    config = learnt().config
    caddy = container_names(config)[layout.CADDY] if config else layout.CONTAINERS[layout.CADDY]
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

