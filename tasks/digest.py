"""Checksums, as the server's sha256sum prints them."""

from __future__ import annotations

import hashlib


def sha256(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()
