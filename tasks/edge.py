"""The edge of several app servers (role "edge", the inventory group ``edge``): Caddy alone,
with the certificate, load-balancing /api/* and the rest across the app servers' private
addresses with active health checks, so that a server that is down is skipped. Its own
compose project (``srq-hpn-edge``), its files in the state directory's ``edge/``.

pyinfra orders each server's operations as deploy.py calls them, and the operations of
several servers by the ones they share: every server of the group runs one operation here
(``app_servers_done``), so the edge's come after the app servers' steps, and a first deploy
of the group brings the app servers up before the edge checks the site through them.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import StringCommand, deploy, operation
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files

from tasks import facts, group, layout, render
from tasks.acme import Context
from tasks.commands import quote
from tasks.digest import sha256
from tasks.operations.files import file_in_place
from tasks.operations.services import stack_answers
from tasks.preflight import Deployment
from tasks.settings import Settings
from tasks.stack_files import acme_ca_root


def upstreams() -> list[str]:
    """The app servers' private addresses, in inventory order; stops the run (before any change)
    when the group has no app server, or one without its address."""
    apps = group.members(host.state.inventory, group.APP_GROUP)
    missing = [app.name for app in apps if not app.data.get("srq_hpn_private_address")]
    if not apps or missing:
        raise PyinfraError(
            f"the edge {host.name} has no app server to send traffic to: "
            + (f"{', '.join(missing)} has no srq_hpn_private_address" if missing else
               f"the inventory's group `{group.APP_GROUP}` is empty")
            + "; nothing was changed")
    return [app.data.get("srq_hpn_private_address") for app in apps]


@deploy("Serve the site through the edge")
def serve(deployment: Deployment):
    """Every server of a group passes here (pyinfra then orders what follows after every app
    server's steps); the edge then runs Caddy alone. Nothing on one server."""
    settings = deployment.settings
    if not group.is_group(host.state.inventory):
        return
    app_servers_done(name="Ensure every app server of the group has the release before the edge changes")
    if not settings.edge:
        return
    paths = settings.paths
    caddyfile, compose = render.edge_caddyfile(settings, upstreams()), render.edge_compose(settings)
    # Decided now, from the server's files as they are (the plan), before they are written.
    start = not host.get_fact(facts.ContainerRunning, container=layout.EDGE_CONTAINER) or \
        host.get_fact(Sha256File, path=paths.edge_compose) != sha256(compose)
    reload = not start and (host.get_fact(Sha256File, path=paths.edge_caddyfile) != sha256(caddyfile) or (
        settings.caddy_acme_ca_root and
        host.get_fact(Sha256File, path=paths.acme_ca_root) != sha256(settings.acme_ca_root_pem())))
    files.directory(name=f"Ensure {paths.edge_dir} exists", path=paths.edge_dir, mode="755")
    files.directory(name=f"Ensure {paths.caddy_dir} exists", path=paths.caddy_dir, mode="755")
    acme_ca_root(settings)
    file_in_place(name=f"Ensure {paths.edge_caddyfile} balances the site across the app servers",
                  path=paths.edge_caddyfile, content=caddyfile)
    files.put(name=f"Ensure {paths.edge_compose} runs Caddy alone", src=StringIO(compose), dest=paths.edge_compose,
              mode="644")
    files.put(name=f"Ensure {paths.stack_env} names the edge's Caddy (for the checks)",
              src=StringIO(render.stack_env(layout.EDGE_PROJECT, {layout.CADDY: layout.EDGE_CONTAINER},
                                            f"{layout.CADDY_CONFIG_DIR}/Caddyfile")),
              dest=paths.stack_env, mode="644")
    edge_running(
        name="Ensure the edge's Caddy runs its configuration"
             + (" (start it)" if start else " (reload its Caddyfile in place)" if reload else ""),
        paths=paths, start=start, reload=reload)
    if settings.verify:
        checked_through_edge(settings)


def checked_through_edge(settings: Settings):
    stack_answers(
        name=f"Ensure https://{settings.domain}/ and /api/* answer through the edge",
        domain=settings.domain,
        tls_internal=settings.caddy_tls == "internal",
        timeout=settings.verify_timeout,
        ca_file=settings.paths.acme_ca_root if settings.caddy_acme_ca_root else None,
        acme=Context(settings.domain, directory=settings.caddy_acme_ca, email=settings.caddy_acme_email)
        if settings.acme else None,
        caddy_container=layout.EDGE_CONTAINER,
    )


@operation()
def edge_running(paths: layout.Paths, start: bool, reload: bool):
    """
    Ensure the edge's Caddy runs its current configuration: started (or recreated) by Compose
    when it does not run or its compose file changed; its Caddyfile reloaded in place when
    only that changed (no connection dropped).

    + paths: the server's state directory (the edge's files)
    + start: start or recreate it (decided from the server's files before they were written)
    + reload: reload its Caddyfile
    """
    if start:
        yield StringCommand(f"cd {quote(paths.edge_dir)} && " + quote("docker", "compose", "up", "-d", "--wait"))
    elif reload:
        yield StringCommand(quote("docker", "exec", layout.EDGE_CONTAINER, "caddy", "reload", "--config",
                                  f"{layout.CADDY_CONFIG_DIR}/Caddyfile", "--adapter", "caddyfile", "--force"))
    else:
        host.noop("the edge's Caddy runs its configuration")


@operation()
def app_servers_done():
    """
    Ensure every app server of the group has finished its steps before the edge's begin: an
    operation every server of the group runs at this point, which pyinfra orders after each
    one's earlier steps (a rendezvous; it changes nothing).
    """
    host.noop("every server of the group reached this step")
    yield from ()
