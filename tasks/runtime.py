"""What a deploy learns on the server while it runs, kept for its later steps.

Some of the deploy's inputs exist only once an earlier step has run on the server:
the app's resolved compose configuration (after its files arrive), the release
(in git mode, the commit checked out). The operation that learns one keeps it
here, per host; later operations read it, or ask the server again when they run
on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyinfra import host


@dataclass
class Learnt:
    config: dict | None = None  # docker compose config, with the deploy's layer
    built: list[str] = field(default_factory=list)  # services whose images the deploy builds
    release: str | None = None  # the release's id (image tag)
    source_revision: str | None = None  # the full upload checksum or git commit
    migrations: str | None = None  # the upload's migration scripts' checksum (None: unknown)
    build_digest: str | None = None
    images_pending: bool = False  # the release's images are being built or pulled
    caddyfile_in_container: str | None = None
    migration_before: list[str] = field(default_factory=list)
    migration_after: list[str] = field(default_factory=list)


_learnt: dict[str, Learnt] = {}


def learnt() -> Learnt:
    return _learnt.setdefault(host.name, Learnt())


def learnt_on(host_name: str) -> Learnt | None:
    """What was learnt on another host object (pyinfra callbacks get the host passed)."""
    return _learnt.get(host_name)
