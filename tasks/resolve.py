"""Resolve the plan of a deploy on one host, before anything changes: the release (from
the local checkout, or the branch's newest commit read without touching the server's
checkout), the env file it gets, what Compose makes of its files with the deploy's
layer (Compose's own config hashes, compared with the running containers'), the images
to build, the migration, and the rest of tasks.plan.Plan. Every answer here is a read.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import Sha256File

from tasks import acme, appspec, deploy_layer, facts, group, layout, render
from tasks.digest import sha256
from tasks.facts.compose import compose_config, planned_config
from tasks.migrations import UnreadableMigrations, release_heads
from tasks.operations.release import prune_plan, wanted_images
from tasks.plan import (Migration, Plan, Release, builds_of, context_id, log_driver_changes, migration_of, rollout_of,
                        stale_services, wal_plan)
from tasks.preflight import Deployment
from tasks.rehearsal import rehearsal_of
from tasks.secrets import EnvSources
from tasks.settings import Settings
from tasks.source import git_ssh
from tasks.external_db import ExternalDb, external_contract_error, external_url_problems

LAYER_NAME = "srq-hpn-layer.yml"  # the deploy's layer, when staged beside the release's files


class PlanError(PyinfraError):
    """The release cannot be deployed as it is; the message says why, before any change."""


def unreadable(what: str, answer: dict, paths: layout.Paths) -> str:
    """A compose configuration Compose could not read: its own words, and how to see them again."""
    return "\n".join([f"{what} (nothing on the server was changed); its own words:"]
                     + [f"  | {line}" for line in answer["error"][-15:]]
                     + [f"hint: once the release's files are there, run the same on the server to see it: cd "
                        f"{paths.app_dir} && docker compose --env-file {layout.ENV_FILE} config"])


def heads_of(paths, read, documents: list[dict]) -> tuple[tuple[str, ...] | None, str]:
    """The release's migration heads, read from its scripts in the migration service's
    build context; (None, why) when they cannot be read."""
    context = appspec.build_context(documents, layout.MIGRATE_SERVICE)
    if context is None:
        return None, f"the {layout.MIGRATE_SERVICE} service builds no image of the repository's"
    try:
        return tuple(release_heads(paths, read, context)), ""
    except UnreadableMigrations as error:
        return None, str(error)


def release_of(deployment: Deployment) -> Release | None:
    """The release: from the uploaded checkout, or the branch's newest commit (None when
    the server cannot read the branch yet: no git, no deploy key on it yet)."""
    settings = deployment.settings
    upload = deployment.upload
    if upload is not None:
        names = appspec.compose_file_names(list(upload.paths))
        files = {name: upload.text(name) for name in layout.CONTRACT_FILES if name in upload.paths}
        documents = [appspec.compose_document(files[name], name) for name in names]
        heads, why = heads_of(upload.paths, upload.text, documents)
        checksums = dict(reversed(line.split("  ", 1)) for line in upload.manifest.splitlines() if "  " in line)
        return Release(upload.revision, upload.manifest_sha, "upload", upload.commit, tuple(names), files,
                       upload.migrations, heads, why, build_ids(documents, checksums))
    state = host.get_fact(facts.GitCheckout, repo=settings.app_git_repo, branch=settings.app_git_branch,
                          app_dir=settings.paths.app_dir, ssh_command=git_ssh(settings))
    current = state["remote"] and state["head"] == state["remote"] and not state["dirty"]
    found = host.get_fact(facts.GitRelease, repo=settings.app_git_repo, branch=settings.app_git_branch,
                          ssh_command=git_ssh(settings), checkout=settings.paths.app_dir if current else "")
    if not found["ok"] or not found["commit"]:
        return None
    names = appspec.compose_file_names(list(found["paths"]))
    files = found["files"]
    documents = [appspec.compose_document(files[name], name) for name in names]
    heads, why = heads_of(found["paths"], files.get, documents)
    scripts = sorted(name for name in files if "/versions/" in name)
    migrations = sha256("\n".join(f"{name}\n{files[name]}" for name in scripts))[:16] if scripts else ""
    commit = found["commit"]
    contract = {name: files[name] for name in layout.CONTRACT_FILES if name in files}
    return Release(commit[:12], commit, "git", commit, tuple(names), contract, migrations, heads, why,
                   build_ids(documents, found["paths"]))


def build_ids(documents: list[dict], checksums: dict[str, str]) -> dict[str, str]:
    """The tag of each image the release builds, from the checksums of its files (path ->
    checksum): a service whose build context did not change keeps its image."""
    return {service: context_id(checksums, appspec.build_context(documents, service))
            for service in appspec.building_services(documents)}


def resolve(deployment: Deployment, sources: EnvSources) -> Plan:
    """The plan of this run on this host (raises PlanError, before any change, when the
    release cannot be deployed: variables without a value, a compose file Compose rejects,
    ports the deploy's layer cannot withhold)."""
    settings = deployment.settings
    release = release_of(deployment)
    if release is None:
        return _first_fetch(settings)
    texts = {name: release.files[name] for name in release.compose_files}
    env = sources.resolve(appspec.needed_variables(texts, release.files.get(layout.ENV_EXAMPLE)))
    if env.problems:
        raise PlanError(f"the release cannot be deployed on {host.name}; nothing on the server was changed:\n"
                        + "\n".join(f"  - {problem}" for problem in env.problems))
    compose_file = render.compose_file_value(list(release.compose_files), settings.paths)
    plan = Plan(release=release, env=env, env_text=render.env_file(env, compose_file),
                env_preview=render.env_file(env, compose_file, masked=True), known=True)
    documents = [appspec.compose_document(text, name) for name, text in texts.items()]
    plan.services = appspec.services_of(documents)
    plan.rotated = [name for name in sources.changed_passwords() if deployment.on_server.get(name)]
    plan.caddyfile_changes = settings.caddyfile == "template" and (
        host.get_fact(Sha256File, path=settings.paths.caddyfile) != sha256(render.caddyfile(settings)))
    if host.get_fact(facts.ComposeVersion) is None:
        _without_docker(plan, documents, "Docker is not installed yet", settings.backup_wal_archive)
        return plan
    plan.caddy_reasons = _caddy_reasons(plan, settings)
    containers = _compose(plan, settings, deployment)
    _images(plan, containers)
    _database(plan, settings, containers)
    _releases(plan, settings)
    plan.maintenance_page_on = bool(host.get_fact(facts.MaintenancePage))
    return plan


def _caddy_reasons(plan: Plan, settings: Settings) -> list[str]:
    """Why a running Caddy reloads in place: its Caddyfile changed; the private ACME server's
    root certificate changed (Caddy reads it when its configuration loads); it has no
    certificate for the domain (its last attempt failed, and it waits before the next one:
    asked again now, so that a deploy after the cause is fixed converges at once)."""
    reasons = ["its Caddyfile changed"] if plan.caddyfile_changes else []
    if settings.caddyfile != "template":
        return reasons
    wanted = sha256(settings.acme_ca_root_pem()) if settings.caddy_acme_ca_root else None
    if host.get_fact(Sha256File, path=settings.paths.acme_ca_root) != wanted:
        reasons.append("the ACME server's root certificate changed")
    if settings.acme and not host.get_fact(facts.ServedCertificate, domain=settings.domain).get("served"):
        reasons.append(f"it has no certificate for {settings.domain}: it asks "
                       f"{acme.server_name(settings.caddy_acme_ca)} again now")
    return reasons


def _first_fetch(settings: Settings) -> Plan:
    """A git release the server cannot read yet: every step is a change, decided as the run gets there."""
    release = Release("", "", "git", None, (), {}, "", None, "the branch is read once git and its key are on the server")
    return Plan(release=release, env=None, env_text="", env_preview="", known=False,
                unknown_why=f"{settings.app_git_repo} ({settings.app_git_branch}) is fetched on the server first")


def _without_docker(plan: Plan, documents: list[dict], why: str, wal_archive: bool = False) -> None:
    """A server without Docker: what the release's files say, the rest once Compose runs."""
    plan.known, plan.unknown_why = False, why
    plan.built = plan.build = appspec.building_services(documents)
    plan.pull = appspec.pulled_images(documents)
    plan.db_start = "not created yet"
    plan.app_role = ["a new database"]
    plan.wal = wal_plan(None, wal_archive, plan.db_start)[0]
    plan.migration = Migration((), plan.release.migration_heads, has_data=False)
    stale = {service: "not created yet" for service in plan.services}
    plan.rollout, plan.reload_caddy = rollout_of(stale, {}, False)
    plan.record_release = plan.goes_live = True


def _compose(plan: Plan, settings: Settings, deployment: Deployment) -> dict:
    """What Compose resolves for the release's files and env file, with the deploy's layer,
    and which services that changes; returns the stack's containers as they are."""
    paths = settings.paths
    release = plan.release
    names = list(release.compose_files)
    same = _holds_release(release, paths, deployment) and host.get_fact(Sha256File, path=paths.env_file) == \
        sha256(plan.env_text)
    own = compose_config(paths.app_dir, names) if same else \
        planned_config(paths.app_dir, release.files, names, plan.env_text)
    changed = {name for name, value in plan.env.values.items() if deployment.on_server.get(name) != value}
    uses = appspec.service_variables({name: release.files[name] for name in names})
    return _layered(plan, settings, own, on_server=same, changed=lambda service: sorted(changed & uses.get(service, set())))


def _layered(plan: Plan, settings: Settings, own: dict, on_server: bool, changed=lambda service: []) -> dict:
    """The deploy's layer over the app's own configuration ``own``, what Compose makes of
    both, and which services that changes (``on_server``: the files and env file are the
    server's already); returns the stack's containers as they are."""
    paths = settings.paths
    release = plan.release
    names = list(release.compose_files)
    if not own["ok"]:
        raise PlanError(unreadable(f"docker compose cannot read the app's compose file on {host.name}", own, paths))
    config = own["config"]
    try:
        layer = deploy_layer.build_layer(
            config, app_dir=paths.app_dir, caddy_dir=paths.caddy_dir,
            caddyfile_template=settings.caddyfile == "template",
            db_on_localhost=settings.postgres_publish_localhost, release=release.id, tags=release.build_ids,
            acme_ca_root=paths.acme_ca_root if settings.caddy_acme_ca_root else "",
            wal=deploy_layer.WalArchive(settings.wal_dir, settings.backup_wal_timeout)
            if settings.backup_wal_archive else None,
            journald=bool(settings.log_shipping_url), external_db=ExternalDb.of(settings),
            private_address=settings.private_address if settings.behind_edge else "")
        if settings.external_db:
            wrong = external_url_problems(config, settings.postgres_host, settings.postgres_port)
            if wrong:
                raise external_contract_error(wrong)
    except appspec.ContractError as error:
        raise PlanError(f"{error} (on {host.name}; nothing on the server was changed)") from None
    plan.config, plan.built, plan.corrections = config, layer.built, layer.corrections
    header = (f"{render.MANAGED_NOTICE}\nThe deploy's layer over the app's compose file (COMPOSE_FILE in "
              f"{layout.ENV_FILE}): release images, Caddyfile, port rules, WAL archiving"
              + (", logs to the journal (log shipping)." if settings.log_shipping_url else "."))
    plan.layer_text = deploy_layer.dump_override(layer.document, header)
    plan.containers_named = appspec.container_names(config)
    plan.stack_env_text = render.stack_env(plan.project, plan.containers_named, layer.caddy.caddyfile,
                                           (config.get("services") or {}).get(layout.DB, {}).get("image") or "")
    plan.caddyfile_in_container = layer.caddy.caddyfile
    containers = host.get_fact(facts.StackContainers, app_dir=paths.app_dir, project=plan.project)
    if on_server and host.get_fact(Sha256File, path=paths.override) == sha256(plan.layer_text):
        merged = compose_config(paths.app_dir)
        hashes = {service: info.get("expected_hash", "") for service, info in containers.items()}
    else:
        staged = [f"{paths.app_dir}/{name}" for name in names] if on_server else names
        merged = planned_config(paths.app_dir, {**release.files, LAYER_NAME: plan.layer_text}, staged + [LAYER_NAME],
                                None if on_server else plan.env_text)
        hashes = merged.get("hashes", {})
    if not merged["ok"]:
        raise PlanError(unreadable(f"docker compose cannot read the app's compose file with the deploy's layer on "
                                   f"{host.name}", merged, paths))
    plan.merged = merged["config"]
    problems = deploy_layer.exposure_problems(plan.merged, settings.postgres_publish_localhost)
    if problems:
        raise PlanError("\n".join(
            [f"The app's compose configuration still publishes ports against the guide's rules (on {host.name}; "
             "nothing on the server was changed):"] + [f"  - {problem}" for problem in problems]
            + ["hint: remove those ports from the app's compose file (the deploy's layer needs Compose 2.24.4+ "
               "to override them)"]))
    plan.services = list((plan.merged.get("services") or {}))
    plan.db_volume = appspec.db_volume(plan.merged)
    stale = stale_services(containers, hashes, plan.services, {service: changed(service) for service in plan.services})
    stale = log_driver_changes(stale, containers, plan.merged)
    for service in plan.built:
        if stale.get(service) == "its configuration changed" and containers.get(service, {}).get("state") == "running":
            stale[service] = f"new image {release.build_ids.get(service, release.id)}"
    plan.db_start = stale.get(layout.DB)
    plan.db_healthy = containers.get(layout.DB, {}).get("health") == "healthy"
    plan.rollout, plan.reload_caddy = rollout_of({s: w for s, w in stale.items() if s != layout.DB}, containers,
                                                 bool(plan.caddy_reasons))
    return containers


def for_stack(settings: Settings, record: dict, restored_revisions: list[str] | None = None) -> Plan:
    """The plan of a rollback or a restore, on the stack the server runs (its own files and
    env file): the release ``record`` (a rollback's target, or the running one), with, after
    a restore (``restored_revisions``: the backup's schema), every service but the database
    and Caddy started again, the app role made sure, and the schema migrated when the
    backup is behind the release."""
    paths = settings.paths
    files = host.get_fact(facts.RepoFiles, app_dir=paths.app_dir)
    try:
        names = appspec.compose_file_names(list(files))
    except appspec.ContractError as error:
        raise PlanError(f"{error} (on {host.name}: deploy first)") from None
    heads = record.get("migration_heads")
    tags = {service: image.rsplit(":", 1)[-1] for service, image in (record.get("images") or {}).items()}
    release = Release(record["release"], record.get("source_revision") or "", record.get("source") or "upload",
                      record.get("commit"), tuple(names), files, record.get("migrations") or "",
                      tuple(heads) if heads is not None else None, build_ids=tags)
    plan = Plan(release=release, env=None, env_text="", env_preview="", known=True)
    _layered(plan, settings, compose_config(paths.app_dir, names), on_server=True)
    if restored_revisions is not None:  # the restore stops every service but the database and Caddy
        stopped = {s: "the database was restored" for s in plan.services if s not in (layout.DB, layout.CADDY)}
        plan.rollout, plan.reload_caddy = rollout_of({**stopped, **plan.rollout.why}, {}, False)
        plan.app_role = ["the database was restored"]
        plan.migration = Migration(tuple(sorted(restored_revisions)), release.migration_heads, has_data=True)
    else:
        database = host.get_fact(facts.DatabaseRevision, container=plan.container(layout.DB),
                                 user=settings.postgres_user, database=settings.postgres_db)
        plan.migration = migration_of(database, list(heads) if heads is not None else None, True)
    known = host.get_fact(facts.Releases, state_dir=paths.state_dir)
    plan.goes_live = known["current"] != release.id
    return plan


def _holds_release(release: Release, paths: layout.Paths, deployment: Deployment) -> bool:
    """Whether the app directory holds exactly the release's files already."""
    if release.source == "upload":
        return host.get_fact(facts.UploadedSource, manifest_sha=deployment.upload.manifest_sha,
                             app_dir=paths.app_dir, state_dir=paths.state_dir) == "current"
    settings = deployment.settings
    state = host.get_fact(facts.GitCheckout, repo=settings.app_git_repo, branch=settings.app_git_branch,
                          app_dir=paths.app_dir, ssh_command=git_ssh(settings))
    return state["head"] == release.commit and not state["dirty"]


def _images(plan: Plan, containers: dict) -> None:
    own, pulled = wanted_images(plan.merged, plan.built, plan.release.build_ids)
    labels = host.get_fact(facts.ImageLabels, images=tuple(own.values()) + tuple(pulled), label=layout.BUILD_LABEL)
    plan.build, plan.pull = builds_of(labels, own, pulled, plan.config["x-build-digests"])
    # An image built again under its tag (other build settings) is a new image for its container.
    rebuilt = {service: "its image is built again" for service in plan.build
               if service not in plan.rollout.why and containers.get(service, {}).get("state") == "running"}
    if rebuilt:
        plan.rollout, plan.reload_caddy = rollout_of({**plan.rollout.why, **rebuilt}, containers,
                                                     bool(plan.caddy_reasons))


def _database(plan: Plan, settings: Settings, containers: dict) -> None:
    if settings.external_db:
        _external_database(plan, settings)
        return
    running = containers.get(layout.DB, {}).get("state") == "running"
    database = host.get_fact(facts.DatabaseRevision, container=plan.container(layout.DB),
                             user=settings.postgres_user, database=settings.postgres_db) if running else None
    volume = host.get_fact(facts.DataVolumes, names=(plan.db_volume,)).get(plan.db_volume, {}) if plan.db_volume else {}
    migration = migration_of(database, list(plan.release.migration_heads)
                             if plan.release.migration_heads is not None else None, bool(volume.get("data")))
    plan.migration = rehearsal_of(migration, settings.migration_rehearsal)
    wal = host.get_fact(facts.WalArchive, container=plan.container(layout.DB), user=settings.postgres_user,
                        database=settings.postgres_db, wal_dir=settings.wal_dir) if running else None
    plan.wal, plan.db_start = wal_plan(wal, settings.backup_wal_archive, plan.db_start)
    reasons = []
    if not running or plan.db_start:
        reasons.append("the database starts" if running or volume.get("exists") else "a new database")
    else:
        reasons += host.get_fact(facts.AppRoleDrift)
    reasons += [f"{name} rotated" for name in plan.rotated]
    plan.app_role = reasons


def _external_database(plan: Plan, settings: Settings) -> None:
    """An external database: nothing to start, no volume, no WAL archive of ours; its schema and
    the app role read through a client container (once the deploy's programs are installed)."""
    plan.db_start, plan.db_volume, plan.wal = None, None, {}
    database = host.get_fact(facts.DatabaseRevision, user=settings.postgres_user, database=settings.postgres_db,
                             external=True)
    # Not read yet (a server new to it): it may hold data, so a migration backs it up first.
    migration = migration_of(database, list(plan.release.migration_heads)
                             if plan.release.migration_heads is not None else None, True)
    plan.migration = rehearsal_of(migration, settings.migration_rehearsal)
    first = group.first_app(host.state.inventory) if settings.behind_edge else None
    if first is not None and first.name != host.name:  # the group's database is migrated once, there
        plan.migration, plan.migrated_by = None, first.name
    reasons = host.get_fact(facts.AppRoleDrift) if database is not None else ["a server new to this database"]
    plan.app_role = reasons + [f"{name} rotated" for name in plan.rotated]


def _releases(plan: Plan, settings: Settings) -> None:
    known = host.get_fact(facts.Releases, state_dir=settings.paths.state_dir)
    ids = {record["release"] for record in known["releases"]}
    plan.current_release = known["current"] or ""
    plan.record_release = plan.release.id not in ids
    plan.goes_live = known["current"] != plan.release.id
    records = known["releases"] + ([{"release": plan.release.id, "created": "9999"}] if plan.record_release else [])
    plan.pruned = prune_plan(records, plan.release.id, settings.releases_kept)


def announce(plan: Plan) -> None:
    """Say the plan at the default verbosity, before anything changes."""
    for line in plan.steps():
        host.log(f"Plan: {line}")

