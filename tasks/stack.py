"""Step 13: start everything (api and web swapped without downtime, Caddy reloaded only
when its configuration changed), the maintenance page off if a restore left it on, then
verify it through Caddy, on the server."""

from __future__ import annotations

from pyinfra.api import deploy

from tasks import layout
from tasks.acme import Context
from tasks.operations.services import maintenance_page_off, rolled_out, stack_answers, standing_by
from tasks.plan import Plan
from tasks.settings import Settings


@deploy("Stand by for the swap")
def standby(plan: Plan):
    """Before the release changes anything: a standby of each upstream the rollout swaps."""
    standing_by(
        name="Ensure a standby of the running version serves during the swap"
             + (f" ({', '.join(plan.rollout.swap)})" if plan.rollout.swap else ""),
        plan=plan,
    )


@deploy("Start the stack and verify it")
def start_and_verify(settings: Settings, plan: Plan):
    brought_up(settings, plan)
    maintenance_page_off(name="Ensure Caddy's maintenance page is off (a restore that did not finish may have left it on)",
                         plan=plan)
    checked_through_caddy(settings, plan)


def brought_up(settings: Settings, plan: Plan):
    words = [plan.rollout.words()] if plan.rollout.services else []
    if plan.reload_caddy:
        words.append(f"reload Caddy: {plan.caddy_words}")
    rolled_out(
        name="Ensure every service runs the release" + (f": {'; '.join(words)}" if words else "")
             + (" (one app server after the other)" if settings.behind_edge else ""),
        paths=settings.paths,
        plan=plan,
    )


def checked_through_caddy(settings: Settings, plan: Plan | None = None):
    """The stack's checks through Caddy, on the server (unless ``srq_hpn_verify`` is off);
    with an ACME server, a certificate Caddy could not get is explained as soon as it says so."""
    if settings.verify and settings.behind_edge:
        address = settings.private_address
        plain = f"http://{f'[{address}]' if ':' in address else address}:{layout.EDGE_PORT}"
        stack_answers(
            name=f"Ensure {plain}/ and /api/* answer the edge through this server's Caddy",
            domain=settings.domain,
            tls_internal=False,
            timeout=settings.verify_timeout,
            plan=plan,
            plain=plain,
        )
    elif settings.verify:
        stack_answers(
            name=f"Ensure https://{settings.domain}/ and /api/* answer through Caddy",
            domain=settings.domain,
            tls_internal=settings.caddy_tls == "internal",
            timeout=settings.verify_timeout,
            plan=plan,
            ca_file=settings.paths.acme_ca_root if settings.caddy_acme_ca_root else None,
            acme=Context(settings.domain, directory=settings.caddy_acme_ca, email=settings.caddy_acme_email)
            if settings.acme else None,
        )
