"""Operations of the srq-hpn stack that pyinfra does not have.

Each declares a wanted state, reads facts, and yields commands only when the
server differs, so a second deploy with nothing changed changes nothing. The
checks that depend on earlier steps (is the db healthy, are migrations at head,
does the stack answer) are made when the deploy runs, not while it is planned:
pyinfra 3 gathers facts afresh each time an operation asks.
"""

from __future__ import annotations

import shlex
import time
from io import BytesIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, FunctionCommand, StringCommand, operation
from pyinfra.facts.files import File, Sha256File

from tasks import facts
from tasks.render import sha256


def _executing() -> bool:
    return bool(host.state.is_executing)


def _fail(message: str):
    """Yield a command that fails the operation, after logging why in red."""
    for line in message.splitlines():
        host.log_styled(line, fg="red", log_func=logger.error)

    def failed(state, host):  # noqa: ARG001 - pyinfra passes both
        return False

    yield FunctionCommand(failed, (), {})


def stale_services(containers: dict, services: list[str]) -> dict[str, str]:
    """Which of ``services`` need `docker compose up`, and why (pure; unit-tested)."""
    stale = {}
    for service in services:
        info = containers.get(service)
        if not info or info.get("state") == "missing":
            stale[service] = "not created"
        elif info["state"] != "running":
            stale[service] = info["state"]
        elif info.get("expected_hash") and info.get("config_hash") != info["expected_hash"]:
            stale[service] = "configuration changed"
        elif not info.get("image_current", True):
            stale[service] = "image changed"
    return stale


@operation()
def private_file(path: str, content, preview: str = "", mode: str = "600", user="root", group="root"):
    """
    Ensure a file holding secrets has the given content, without ever showing it.

    + path: remote path of the file
    + content: a ``HiddenValue`` with the file's text
    + preview: text shown instead of the content with ``--diff`` (secrets masked)
    + mode/user/group: permissions; the file is created with them before any byte is written

    Example:

    .. code:: python

        private_file(
            name="Ensure /opt/srq-hpn/.env.production holds the settings (0600)",
            path="/opt/srq-hpn/.env.production",
            content=HiddenValue(text),
            preview=masked_text,
        )
    """
    data = content.unmask().encode()
    remote = host.get_fact(File, path=path)
    if remote and host.get_fact(Sha256File, path=path) == sha256(data):
        if remote["mode"] != int(mode) or remote["user"] != user or remote["group"] != group:
            yield StringCommand("chown", f"{user}:{group}", path)
            yield StringCommand("chmod", mode, path)
        else:
            host.noop(f"{path} is up to date")
        return

    if host.state.config.DIFF:
        host.log(f"Will {'modify' if remote else 'create'} {path} (secrets masked):", logger.info)
        for line in preview.splitlines():
            logger.info("  %s", line)

    if not remote:
        # Created empty with its final mode first: the content never sits in a readable file.
        yield StringCommand("install", "-m", mode, "-o", user, "-g", group, "/dev/null", path)
    # With sudo, pyinfra uploads to a temporary file first: keep it in the SSH user's
    # home directory (relative path), not in the world-readable /tmp.
    temporary = f".srq-hpn-upload-{sha256(path)[:12]}"
    yield FileUploadCommand(BytesIO(data), path, remote_temp_filename=temporary)
    yield StringCommand("chown", f"{user}:{group}", path)
    yield StringCommand("chmod", mode, path)


@operation()
def source_archive(archive_path: str, data: bytes, dest: str, revision_file: str):
    """
    Ensure ``dest`` holds exactly the files of an uploaded source archive.

    + archive_path: where the .tar.gz is kept on the server (compared by sha256)
    + data: the archive's bytes (see ``tasks.render.source_archive``)
    + dest: directory the archive is unpacked into; replaced whole when the archive changes
    + revision_file: records the archive's sha256 once unpacked
    """
    digest = sha256(data)
    if host.get_fact(Sha256File, path=archive_path) != digest:
        yield FileUploadCommand(BytesIO(data), archive_path, remote_temp_filename=host.get_temp_filename(archive_path))
    elif host.get_fact(facts.TextFile, path=revision_file) == digest:
        host.noop(f"{dest} holds source {digest[:12]}")
        return
    new, old, archive, marker = (shlex.quote(p) for p in (f"{dest}.new", dest, archive_path, revision_file))
    yield StringCommand(
        f"rm -rf {new} && mkdir -p {new} && tar -xzf {archive} -C {new} "
        f"&& rm -rf {old} && mv {new} {old} && echo {digest} > {marker}"
    )


@operation()
def git_checkout(repo: str, branch: str, dest: str, revision_file: str, ssh_command: str = ""):
    """
    Ensure ``dest`` is a clean checkout of the newest commit of a repository's branch.

    + repo: repository URL
    + branch: branch to deploy
    + dest: checkout directory on the server
    + revision_file: records the deployed commit
    + ssh_command: GIT_SSH_COMMAND for a deploy key, if any
    """
    env = f"GIT_SSH_COMMAND={shlex.quote(ssh_command)} " if ssh_command else ""
    remote = host.get_fact(facts.GitRemoteHead, repo=repo, branch=branch, ssh_command=ssh_command)
    if remote and host.get_fact(facts.TextFile, path=revision_file) == remote:
        host.noop(f"{dest} is at {branch} {remote[:12]}")
        return
    d, r, b, marker = (shlex.quote(x) for x in (dest, repo, branch, revision_file))
    yield StringCommand(
        f"if [ -d {d}/.git ]; then {env}git -C {d} fetch --depth 1 origin {b} "
        f"&& git -C {d} reset --hard FETCH_HEAD && git -C {d} clean -fdx; "
        f"else rm -rf {d} && {env}git clone --depth 1 --branch {b} --single-branch {r} {d}; fi "
        f"&& git -C {d} rev-parse HEAD > {marker}"
    )


@operation()
def services_up(app_dir: str, services: list[str]):
    """
    Ensure compose services run with the configuration and images compose.yml asks for.

    + app_dir: directory of compose.yml and .env.production
    + services: compose services to bring up (`docker compose up -d` of just those)

    Nothing is restarted when every container already runs its current config and image.
    """
    containers = host.get_fact(facts.StackContainers, app_dir=app_dir)
    stale = stale_services(containers, services)
    if not stale:
        host.noop(f"{', '.join(services)} already up to date")
        return
    host.log(
        "Bringing up: " + ", ".join(f"{service} ({why})" for service, why in stale.items()),
        logger.info,
    )
    yield StringCommand(facts.compose(app_dir, "up", "-d", "--remove-orphans", *services))


@operation()
def container_healthy(container: str, service: str, timeout: int, poll: float = 2.0):
    """
    Ensure a container's healthcheck reports healthy, waiting up to ``timeout`` seconds.

    + container: container name
    + service: compose service name, for messages
    + timeout: seconds to wait before failing with the container's last log lines

    Changes nothing; fails the deploy (and so starts nothing after it) on timeout.
    """
    if not _executing():
        host.noop(f"{service} health is checked when the deploy runs")
        return
    started = time.monotonic()
    last_report = 0.0
    while True:
        state = host.get_fact(facts.ContainerState, container=container)
        elapsed = time.monotonic() - started
        if state["state"] == "running" and state["health"] in ("healthy", "none"):
            host.noop(f"{service} is healthy after {elapsed:.0f}s")
            return
        finished = state["state"] in ("exited", "dead", "missing")
        if finished or elapsed >= timeout:
            logs = host.get_fact(facts.ContainerLogs, container=container, tail=30)
            why = f"stopped ({state['state']})" if finished else f"not healthy after {timeout}s"
            yield from _fail(
                f"{service} ({container}) is {why}; health: {state['health']}. "
                "Nothing else was started. Last log lines:\n" + "\n".join(f"  | {l}" for l in logs)
            )
            return
        if elapsed - last_report >= 5:
            host.log(f"Waiting for {service} to be healthy: {state['health']} ({elapsed:.0f}s of {timeout}s)")
            last_report = elapsed
        time.sleep(poll)


@operation()
def app_role(container: str = facts.CONTAINERS["db"]):
    """
    Ensure the limited app role exists with exactly its grants and current password.

    + container: the db container, whose init script (mounted from db/init) both checks and applies

    Covers a data volume that existed before (the image then skips its init scripts).
    """
    if not _executing():
        host.noop("app role is checked when the deploy runs")
        return
    drift = host.get_fact(facts.AppRoleDrift, container=container)
    if not drift:
        host.noop("app role and grants are as wanted")
        return
    host.log("App role differs: " + "; ".join(drift), logger.info)
    yield StringCommand("docker", "exec", container, "bash", facts.INIT_SCRIPT_IN_CONTAINER, "apply")


@operation()
def images_built(app_dir: str, services: list[str], build_digest: str, source_revision: str | None = None):
    """
    Ensure the app's images are built from the current source and build arguments.

    + app_dir: directory of compose.yml
    + services: compose services to build
    + build_digest: identifies the build settings (compose.yml, build arguments)
    + source_revision: the source being deployed, when known while planning;
      otherwise read from ``.state/source-revision`` on the server
    """
    state_dir = f"{app_dir}/.state"
    if source_revision is None:
        source_revision = host.get_fact(facts.TextFile, path=f"{state_dir}/source-revision") or "unknown"
    wanted = f"{source_revision} {build_digest}"
    if host.get_fact(facts.TextFile, path=f"{state_dir}/built-revision") == wanted:
        host.noop(f"images of {', '.join(services)} are built from {source_revision[:12]}")
        return
    yield StringCommand(
        facts.compose(app_dir, "build", *services)
        + f" && echo {shlex.quote(wanted)} > {shlex.quote(state_dir + '/built-revision')}"
    )


@operation()
def migrated(app_dir: str):
    """
    Ensure the database schema is at the newest alembic revision (run with the superuser).

    + app_dir: directory of compose.yml; runs the one-off ``migrate`` service
    """
    if not _executing():
        host.noop("migrations are checked when the deploy runs")
        return
    if host.get_fact(facts.MigrationState, app_dir=app_dir)["at_head"]:
        host.noop("database schema is at head")
        return
    yield StringCommand(facts.compose(app_dir, "run", "--rm", "-T", "migrate"))


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
def stack_answers(domain: str, tls_internal: bool, timeout: int, poll: float = 3.0):
    """
    Ensure the stack answers through Caddy, on the server itself.

    + domain: the site's host name (requests go to 127.0.0.1 with this name)
    + tls_internal: verify TLS against Caddy's internal CA instead of the system's
    + timeout: seconds to keep trying before failing with each failed check

    Changes nothing; fails the deploy naming every check that failed and what came back.
    """
    if not _executing():
        host.noop("the stack is checked when the deploy runs")
        return
    started = time.monotonic()
    while True:
        results = host.get_fact(facts.StackHealth, domain=domain, tls_internal=tls_internal)
        problems = failed_checks(results, domain)
        elapsed = time.monotonic() - started
        if not problems:
            host.noop(f"https://{domain}/ answers: /, /api/health, /api/db-health and HTTP redirect")
            return
        if elapsed >= timeout:
            yield from _fail(f"The stack did not pass its checks within {timeout}s:\n" + "\n".join(
                f"  - {problem}" for problem in problems
            ))
            return
        host.log(f"Waiting for the stack to answer ({len(problems)} check(s) pending, {elapsed:.0f}s of {timeout}s)")
        time.sleep(poll)
