"""SSH host keys given in the settings: their rule, and the known_hosts line the server
gets (pure code, unit-tested).

The server never trusts a key on first use unless the operator says so: an SSH git
repository and the off-server copy's host each need their key in a setting, or an
explicit opt-in that accepts the first key shown.
"""

from __future__ import annotations

import re

# "[<host patterns>] <key type> <base64 key> [comment]", on one line.
HOST_KEY_RE = re.compile(
    r"^(?:(?P<hosts>[!-~]+)[ \t]+)?(?P<type>(?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+)[ \t]+(?P<key>[A-Za-z0-9+/]+={0,3})"
    r"(?:[ \t]+[ -~]*)?$"
)


def check_host_key(setting: str, value: str) -> list[str]:
    """The problem of a host key setting, if any (empty: not given)."""
    if value and not HOST_KEY_RE.fullmatch(value.strip(" \t")):
        return [f"{setting} must be the server's public host key as one known_hosts line ('<host> ssh-ed25519 "
                "AAAA...') or its key alone ('ssh-ed25519 AAAA...'); ssh-keyscan <host> prints it (check it "
                "against the server's own /etc/ssh/ssh_host_*_key.pub)"]
    return []


def known_hosts_line(value: str, host: str, port: int = 22) -> str:
    """The known_hosts line for ``host``: the key of the setting, under the host name
    (and port) that SSH will look it up by, whatever host the setting's line named."""
    match = HOST_KEY_RE.fullmatch(value.strip(" \t"))
    if match is None:
        raise ValueError("not a host key")
    pattern = host if port == 22 else f"[{host}]:{port}"
    return f"{pattern} {match['type']} {match['key']}\n"
