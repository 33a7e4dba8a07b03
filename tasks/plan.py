"""The plan of one run on one host: the release, resolved once before anything changes,
and what the run will do with it. Pure data and decisions (unit-tested); tasks.resolve
reads the facts and the release's files that make it.

Every operation of the deploy decides from this value, as pyinfra's own operations
decide from their facts: so `--dry` lists exactly the operations the run changes, and
each says why (``Plan.steps``). Where something can only be known once the run has
begun (a server without Docker yet: what Compose makes of the app's files), the plan
still names the operation as a change, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tasks import layout
from tasks.digest import sha256
from tasks.secrets import Resolved


@dataclass(frozen=True)
class Release:
    """The release being deployed: its id (the images' tag), its source, and its files."""

    id: str  # 12 hex digits of the source revision
    source_revision: str  # the upload's manifest checksum, or the git commit
    source: str  # "upload" or "git"
    commit: str | None  # the local checkout's commit (upload), or the branch's (git)
    compose_files: tuple[str, ...]  # the repository's compose files, in Compose's order
    files: dict  # the contract files (compose files, .env.production.example), by name
    migrations: str  # checksum of the migration scripts ("" when there are none)
    migration_heads: tuple[str, ...] | None  # read from the scripts; None: they cannot be read
    heads_unknown_why: str = ""
    # The tag of each image the release builds: a checksum of the files of its build context,
    # so that a service whose files did not change keeps its image, and is not recreated.
    build_ids: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Release({self.id}, {self.source})"


@dataclass(frozen=True)
class Migration:
    """The schema's way from the database's revision to the release's heads."""

    current: tuple[str, ...] | None  # the database's revisions; None: it does not answer yet
    heads: tuple[str, ...] | None  # the release's; None: its scripts cannot be read
    has_data: bool  # the database holds tables (or may: unknown): a backup goes first
    # Run first on a copy of production (the backup before it, restored into a scratch
    # database on the server); decided by tasks.rehearsal.rehearsal_of, never by default.
    rehearsed: bool = False
    unrehearsed_why: str = ""  # why not, when it is not (shown in the plan only with data at stake)

    @property
    def pending(self) -> bool:
        """Whether alembic upgrade head runs: the revisions differ, or either is unknown."""
        return self.current is None or self.heads is None or sorted(self.current) != sorted(self.heads)

    @property
    def label(self) -> str:
        """The label of the backup taken before it."""
        return migration_label(list(self.current or []), list(self.heads or []))

    def words(self) -> str:
        before = ", ".join(self.current) if self.current else ("the database's revision" if self.current is None
                                                                else "an empty database")
        after = ", ".join(self.heads) if self.heads else ("the release's heads" if self.heads is None else "none")
        text = f"migrate {before} -> {after}"
        if self.rehearsed:
            text += ", rehearsed on a copy first"
        if self.has_data:
            text += f", after a backup {self.label}"
        if self.has_data and not self.rehearsed and self.unrehearsed_why:
            text += f", not rehearsed ({self.unrehearsed_why})"
        return text


def migration_label(current: list[str], heads: list[str]) -> str:
    """The label of a pre-migration backup, named after the revisions (pure; unit-tested)."""

    def revisions(values: list[str]) -> str:
        return "+".join(re.sub(r"[^A-Za-z0-9._-]", "_", value) for value in values) or "none"

    return f"pre-migration-{revisions(current)}-to-{revisions(heads)}"[:80]


def migration_of(database: dict | None, heads: list[str] | None, volume_has_data: bool) -> Migration:
    """The migration, from the live database's revisions and tables (None: it does not
    answer) and the release's heads (pure; unit-tested)."""
    if database is None:
        return Migration(None, tuple(heads) if heads is not None else None, has_data=volume_has_data)
    has_data = bool(database["revisions"]) or bool(database["tables"])
    return Migration(tuple(sorted(database["revisions"])), tuple(sorted(heads)) if heads is not None else None,
                     has_data=has_data)


@dataclass(frozen=True)
class Rollout:
    """How the services are brought to the release, decided here once (srq-hpn-rollout
    carries it out as given): Caddy's upstreams that run are swapped without downtime;
    the others created or recreated by Compose; Caddy last when it runs (its upstreams
    current first), with the others when it does not yet."""

    swap: tuple[str, ...] = ()
    up: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    why: dict = field(default_factory=dict)  # service -> why it changes

    @property
    def services(self) -> tuple[str, ...]:
        return self.swap + self.up + self.last

    def arguments(self) -> list[str]:
        """srq-hpn-rollout's arguments."""
        args = []
        for option, services in (("--swap", self.swap), ("--up", self.up), ("--last", self.last)):
            for service in services:
                args += [option, service]
        return args

    def words(self) -> str:
        parts = []
        if self.swap:
            parts.append(f"swap {', '.join(self.swap)} without downtime")
        if self.up:
            parts.append(f"bring up {', '.join(self.up)}")
        if self.last:
            parts.append(f"recreate {', '.join(self.last)} last")
        reasons = sorted({why for why in self.why.values()})
        return "; ".join(parts) + (f" ({'; '.join(reasons)})" if reasons else "")


def wal_plan(state: dict | None, archive: bool, db_start: str | None) -> tuple[dict, str | None]:
    """(what makes the WAL archive ready after the database starts, why the database
    starts) (pure; unit-tested): ``state`` the WalArchive fact of the running database
    (None: it does not run), ``archive`` the setting, ``db_start`` why the plan starts it
    already (its configuration changed...)."""
    mode = (state or {}).get("archive_mode")
    if db_start and mode == "off" and archive:
        db_start = "WAL archiving turned on: it restarts once"
    elif db_start and mode == "on" and not archive:
        db_start = "WAL archiving turned off: it restarts once"
    if not archive:
        return {}, db_start
    if state is None or mode != "on":
        return {"setup": "the archive directory given to the database",
                "base": "a first base backup of the cluster: the recoverable window starts there"}, db_start
    steps = {}
    if not state.get("owned"):
        steps["setup"] = "the archive directory given to the database"
    if not state.get("base_backups"):
        steps["base"] = "a first base backup of the cluster: the recoverable window starts there"
    return steps, db_start


def finished_job(service: str, info: dict) -> bool:
    """A one-shot service of the app's own that ran and exited 0 (not one of the guide's)."""
    return service not in layout.SERVICES and info.get("state") == "exited" and info.get("exit_code") == 0


def stale_services(containers: dict, hashes: dict[str, str], services: list[str],
                   changed_variables: dict[str, list[str]] | None = None) -> dict[str, str]:
    """Which of ``services`` the run creates or recreates, and why (pure; unit-tested):
    ``containers`` as the StackContainers fact has them now, ``hashes`` the config hash
    each service will have (what Compose labels a container with), and
    ``changed_variables``: per service, the variables of .env.production it uses that
    this run changes (to say why)."""
    stale = {}
    for service in services:
        info = containers.get(service)
        if not info or info.get("state") in (None, "missing"):
            stale[service] = "not created yet"
        elif info["state"] != "running" and not finished_job(service, info):
            stale[service] = info["state"]
        elif hashes.get(service) and info.get("config_hash") != hashes[service]:
            changed = (changed_variables or {}).get(service)
            stale[service] = f"{', '.join(changed)} changed" if changed else "its configuration changed"
        elif not info.get("image_current", True):
            stale[service] = "its image changed"
    return stale


def log_driver_changes(stale: dict[str, str], containers: dict, merged: dict) -> dict[str, str]:
    """``stale`` with the reason of each service whose container changes log driver said so
    (pure; unit-tested): a container keeps its log driver for life, so turning log shipping
    on or off recreates each container once. ``merged``: the configuration Compose resolves
    with the deploy's layer (a service without logging gets the daemon's driver)."""
    services = merged.get("services") or {}
    result = dict(stale)
    for service, why in stale.items():
        running = (containers.get(service) or {}).get("log_driver")
        wanted = ((services.get(service) or {}).get("logging") or {}).get("driver") or layout.DEFAULT_LOG_DRIVER
        if running and running != wanted and why == "its configuration changed":
            result[service] = f"its log driver changes, {running} to {wanted}"
    return result


def rollout_of(stale: dict[str, str], containers: dict, reload_caddy: bool) -> tuple[Rollout, bool]:
    """(the rollout of the stale services, whether Caddy is reloaded in place) (pure;
    unit-tested). A Caddyfile change reloads a Caddy that is not recreated anyway."""
    running = {service for service, info in containers.items() if info.get("state") == "running"}
    swap = tuple(s for s in layout.UPSTREAMS if s in stale and s in running)
    caddy_last = layout.CADDY in stale and layout.CADDY in running
    up = tuple(sorted(s for s in stale if s not in swap and s != layout.DB and not (s == layout.CADDY and caddy_last)))
    # Upstreams not running yet come first among the others: Caddy, when it starts with
    # them, holds requests until they answer.
    up = tuple(s for s in up if s in layout.UPSTREAMS) + tuple(s for s in up if s not in layout.UPSTREAMS)
    rollout = Rollout(swap=swap, up=up, last=(layout.CADDY,) if caddy_last else (),
                      why={s: why for s, why in stale.items() if s != layout.DB})
    return rollout, reload_caddy and layout.CADDY not in stale


def builds_of(labels: dict, own: dict[str, str], pulled: list[str], digests: dict[str, str]) -> tuple[list[str], list[str]]:
    """(services to build: their image is missing or was built with other build settings,
    images to pull: missing) (pure; unit-tested)."""
    return ([service for service, image in own.items() if labels.get(image) != digests.get(service)],
            [image for image in pulled if labels.get(image) is None])


def context_id(files: dict[str, str], context: str) -> str:
    """The tag of an image built from ``context`` (a directory of the repository, "" for
    its root): the checksum of its files' checksums (``files``: path -> checksum) (pure)."""
    prefix = f"{context}/" if context else ""
    listing = "".join(f"{digest}  {path}\n" for path, digest in sorted(files.items()) if path.startswith(prefix))
    return sha256(listing)[:12]


@dataclass
class Plan:
    """What one run does on one host, decided before anything changes."""

    release: Release
    env: Resolved  # the values of .env.production (secret ones never shown)
    env_text: str  # its text (secret)
    env_preview: str  # its text with every secret masked (--diff)
    known: bool  # the server could tell what Compose resolves (False: no Docker yet)
    unknown_why: str = ""
    config: dict | None = None  # the app's own configuration, resolved (values dropped)
    merged: dict | None = None  # ... with the deploy's layer
    layer_text: str | None = None  # compose.deploy.yml
    stack_env_text: str | None = None  # $STATE_DIR/stack.env
    caddyfile_in_container: str | None = None  # where Caddy reads the Caddyfile the layer mounts
    corrections: list[str] = field(default_factory=list)  # ports the layer withholds
    containers_named: dict = field(default_factory=dict)  # service -> container name
    services: list[str] = field(default_factory=list)  # the app's compose services
    built: list[str] = field(default_factory=list)  # services whose images the release builds
    build: list[str] = field(default_factory=list)  # ... that are not built yet
    pull: list[str] = field(default_factory=list)  # images not on the server yet
    current_release: str = ""  # the release the server ran when the plan was made
    migrated_by: str = ""  # an app server of a group: the first one, which migrates the shared database
    db_volume: str | None = None
    db_start: str | None = None  # why the database is started (None: it runs as wanted)
    db_healthy: bool = False
    app_role: list[str] = field(default_factory=list)  # why the app role is made sure
    migration: Migration | None = None
    rollout: Rollout = field(default_factory=Rollout)
    reload_caddy: bool = False
    caddyfile_changes: bool = False
    # Why Caddy reloads in place (when it is not recreated anyway): its Caddyfile changed,
    # the ACME server's root changed, it has no certificate for the domain yet.
    caddy_reasons: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)  # passwords this run changes
    record_release: bool = False  # a new release record
    goes_live: bool = False  # the release becomes the current one
    pruned: list[dict] = field(default_factory=list)  # releases whose images are removed
    maintenance_page_on: bool = False
    # The WAL archive made ready after the database starts: "setup" (the archive directory
    # given to its postgres user), "base" (a first base backup of this cluster), each with why.
    wal: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # never a secret in a traceback or a log line
        return f"Plan({self.release!r}, ********)"

    @property
    def project(self) -> str:
        return (self.config or {}).get("name") or layout.PROJECT

    def container(self, service: str) -> str:
        return self.containers_named.get(service) or layout.CONTAINERS.get(service, f"{self.project}-{service}-1")

    @property
    def caddy_words(self) -> str:
        return "; ".join(self.caddy_reasons) or "its Caddyfile changed"

    @property
    def awaits_fetch(self) -> bool:
        """The release is a git branch the server could read only once the run fetched it:
        the operations that depend on it decide then (tasks.operations.plan)."""
        return not self.release.id

    @property
    def migrates(self) -> bool:
        return self.migration is not None and self.migration.pending

    @property
    def migration_before(self) -> list[str]:
        return list(self.migration.current or []) if self.migration else []

    @property
    def migration_after(self) -> list[str]:
        if self.migration is None:
            return []
        return list(self.migration.heads if self.migration.heads is not None else self.migration.current or [])

    def steps(self) -> list[str]:
        """The plan in words: each change the run makes, with its reason, one a line."""
        lines = []
        if not self.known:
            lines.append(f"first deploy: {self.unknown_why}; the rest is decided as the run gets there")
        if self.rotated:
            lines.append(f"rotate {', '.join(self.rotated)}")
        if self.build:
            lines.append(f"build {', '.join(self.build)} (release {self.release.id})")
        if self.pull:
            lines.append(f"pull {', '.join(self.pull)}")
        if self.db_start:
            lines.append(f"start db ({self.db_start})")
        if self.app_role:
            lines.append(f"make sure of the app role ({'; '.join(self.app_role)})")
        if self.wal:
            lines.append(f"make the WAL archive ready ({'; '.join(self.wal.values())})")
        if self.migrates:
            lines.append(self.migration.words())
        if self.migrated_by:
            lines.append(f"the schema is migrated once, by {self.migrated_by}, before any server is swapped")
        if self.rollout.services:
            lines.append(self.rollout.words())
        if self.reload_caddy:
            lines.append(f"reload Caddy in place ({self.caddy_words})")
        if self.maintenance_page_on:
            lines.append("turn off the maintenance page a restore left on")
        if self.goes_live:
            lines.append(f"release {self.release.id} goes live")
        return lines or ["nothing to change"]
