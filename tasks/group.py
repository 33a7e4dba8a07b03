"""Several servers: app servers (inventory group ``app``) behind an edge (group ``edge``).

The rules of the role settings (pure), and what a host knows of its group, read from
pyinfra's own inventory: which app servers there are, in inventory order, and where the
edge reaches them. Nothing here orchestrates: pyinfra runs each operation on every host
(``_serial``: one host after the other, ``_run_once``: on the first host only), and
``config.FAIL_PERCENT = 0`` stops the whole run when an operation fails on one host.
"""

from __future__ import annotations

import ipaddress

ROLES = ("server", "app", "edge")
APP_GROUP, EDGE_GROUP = "app", "edge"


def is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def check_role(merged: dict) -> list[str]:
    """The role's own settings (an app server needs its private address, an external database
    and the deploy's Caddyfile)."""
    problems = []
    role, address = merged["srq_hpn_role"], merged["srq_hpn_private_address"]
    if role not in ROLES:
        problems.append(f"srq_hpn_role must be one of {', '.join(ROLES)}, got {role!r}")
    if address and not is_address(address):
        problems.append(f"srq_hpn_private_address must be an IP address (where the app server's Caddy listens), "
                        f"got {address!r}")
    if role == "app":
        if not address:
            problems.append("srq_hpn_private_address is required on an app server: the address on the private "
                            "network where the edge (or your load balancer) reaches its Caddy")
        if not merged["postgres_host"]:
            problems.append("postgres_host is required on an app server: app servers share an external database "
                            "(a managed PostgreSQL), not a db service each")
        if merged["srq_hpn_caddyfile"] != "template":
            problems.append("srq_hpn_caddyfile must be \"template\" on an app server: its Caddy serves plain HTTP "
                            "to the edge on the private address, which the repository's Caddyfile does not")
    return problems


def members(inventory, group: str) -> list:
    """The hosts of an inventory group, in inventory order (none when there is no such group)."""
    try:
        return list(inventory.get_group(group))
    except Exception:  # noqa: BLE001 - pyinfra raises NoGroupError for a group the inventory lacks
        return []


def is_group(inventory) -> bool:
    """Whether this inventory deploys a group (app servers, an edge), not independent servers."""
    return bool(members(inventory, APP_GROUP) or members(inventory, EDGE_GROUP))


def first_app(inventory):
    """The first app server: the group's migrations and scheduled backups run there."""
    apps = members(inventory, APP_GROUP)
    return apps[0] if apps else None


# --- A run across the group ------------------------------------------------------------
# pyinfra runs each operation on every host before the next (a ``_serial`` one host after the
# other), and with FAIL_PERCENT = 0 the run ends after an operation that failed anywhere. Within
# a serial operation the hosts after the failing one would still run it: each serial step of the
# group (the lock, the swap) first asks whether the run stopped, and is not done if it did.

_stopped: dict[str, str] = {}
_swapped: list[str] = []


def stop(where: str, why: str) -> bool:
    """Record that the group's run stopped (the first failure only); True when this is the first."""
    if _stopped:
        return False
    _stopped.update(where=where, why=why)
    return True


def stopped() -> str:
    """Why the group's run stopped ("" while it goes on)."""
    return f"{_stopped['why']} failed on {_stopped['where']}" if _stopped else ""


def swapped(name: str) -> None:
    _swapped.append(name)


def was_swapped(name: str) -> bool:
    return name in _swapped


def release_words(runs: dict) -> list[str]:
    """Which release each app server runs now, for the operator (``runs``: host name -> its run)."""
    lines = []
    for name, run_ in runs.items():
        plan = run_.plan
        if plan is None or not plan.release.id:
            continue
        if was_swapped(name):
            lines.append(f"{name} runs release {plan.release.id} (swapped)")
        else:
            before = plan.current_release or "none yet"
            lines.append(f"{name} runs release {before}" + ("" if before == plan.release.id else
                                                          f" (release {plan.release.id} not swapped in)"))
    return lines
