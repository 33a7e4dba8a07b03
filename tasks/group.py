"""Several servers: app servers (inventory group ``app``) behind an edge (group ``edge``).

The rules of the role settings (pure), and what a host knows of its group, read from
pyinfra's own inventory: which app servers there are, in inventory order, and where the
edge reaches them. pyinfra runs each operation on every host before the next, and its
``FAIL_PERCENT = 0`` stops the whole run when an operation fails on one host; two
operations (the lock, the swap) take turns in the inventory's order (below).
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
# pyinfra runs each operation on every host before the next, and with FAIL_PERCENT = 0 the run
# ends after an operation that failed anywhere. Two steps of a group go one server at a time, in
# the inventory's order (app1, app2, ..., the edge): the lock (two runs started at once meet at
# the same first server, and one of them refuses there) and the swap. pyinfra's ``_serial`` runs
# an operation one host at a time, but in no fixed order (a set's); so those two operations run
# on every host at once, and each host waits for its turn: until the hosts before it in the
# inventory have finished the operation (``take_turn``, ``turn_done``: gevent events, in this
# process). A host whose turn comes after the run stopped does not do it.

_turns: dict = {}  # (step, server) -> gevent.event.Event


def _turn(step: str, name: str):
    from gevent.event import Event

    return _turns.setdefault((step, name), Event())


def ordered(inventory) -> list:
    """The group's servers in the inventory's order: the app servers, then the edge(s)."""
    seen, hosts = set(), []
    for candidate in members(inventory, APP_GROUP) + members(inventory, EDGE_GROUP):
        if candidate.name not in seen:
            seen.add(candidate.name)
            hosts.append(candidate)
    return hosts


def take_turn(state, step: str, name: str) -> None:
    """Wait until every server before ``name`` in the group's order that takes part in this run has
    finished ``step`` (at once for the first, and outside a group)."""
    for earlier in ordered(state.inventory):
        if earlier.name == name:
            return
        if earlier in state.active_hosts:
            _turn(step, earlier.name).wait()


def turn_done(step: str, name: str) -> None:
    _turn(step, name).set()


def all_turns_done(name: str) -> None:
    """A server failed: whatever step it was in, the servers after it may take their turn (and
    find the run stopped)."""
    for step in STEPS:
        _turn(step, name).set()


LOCK_STEP, SWAP_STEP = "lock", "swap"
STEPS = (LOCK_STEP, SWAP_STEP)

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


# Settings every server of a group must share (the same site, database and release), and
# those the app servers alone must share.
SHARED = ("srq_hpn_domain", "caddy_tls", "caddy_acme_ca")
SHARED_BY_APPS = ("postgres_host", "postgres_port", "postgres_db", "postgres_user", "postgres_app_user",
                  "postgres_sslmode", "srq_hpn_app_source", "srq_hpn_app_local_path", "srq_hpn_app_git_repo",
                  "srq_hpn_app_git_branch", "app_env", "app_secrets")


def disagreements(servers: dict[str, tuple[str, dict]]) -> list[str]:
    """What the servers of a group do not agree on (``servers``: name -> (role, settings), in the
    inventory's order): a shared setting with another value than on the first server that has
    it, two app servers at one private address (pure; unit-tested)."""
    problems = []
    reference: dict[str, tuple[str, object]] = {}
    addresses: dict[str, str] = {}
    for name, (role, data) in servers.items():
        for key in SHARED + (SHARED_BY_APPS if role == "app" else ()):
            if key not in data:
                continue
            owner, value = reference.setdefault(key, (name, data[key]))
            if data[key] != value:
                problems.append(f"{key} is {data[key]!r} on {name} but {value!r} on {owner}: the servers of a group "
                                "share it")
        address = data.get("srq_hpn_private_address")
        if role == "app" and address:
            owner = addresses.setdefault(address, name)
            if owner != name:
                problems.append(f"srq_hpn_private_address {address} is both {owner}'s and {name}'s")
    return problems
