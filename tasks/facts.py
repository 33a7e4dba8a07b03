"""Facts about a server running the srq-hpn stack.

Each fact is read-only and prints nothing secret, so it is safe at any
verbosity. Ask them ad hoc, e.g.::

    pyinfra inventory.py fact tasks.facts.StackContainers
    pyinfra inventory.py fact tasks.facts.StackHealth domain=example.com
"""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

PROJECT = "srq-hpn"
ENV_FILE = ".env.production"
CONTAINERS = {
    "caddy": "srq-hpn-caddy",
    "web": "srq-hpn-web",
    "api": "srq-hpn-api",
    "db": "srq-hpn-db",
}
CADDY_ROOT_CA = "/data/caddy/pki/authorities/local/root.crt"
INIT_SCRIPT_IN_CONTAINER = "/docker-entrypoint-initdb.d/01-create-app-user.sh"


def compose(app_dir: str, *args: str) -> str:
    """The shell text of a docker compose command run in the app directory."""
    words = ["docker", "compose", "--env-file", ENV_FILE, *args]
    return f"cd {shlex.quote(app_dir)} && " + " ".join(shlex.quote(word) for word in words)


class StackContainers(FactBase):
    """
    Returns the stack's containers by compose service: state, health, start time,
    image, and whether it runs the configuration compose.yml now asks for.

    .. code:: python

        {
            "db": {
                "name": "srq-hpn-db", "state": "running", "health": "healthy",
                "started_at": "2026-11-27T19:01:02.123Z", "image": "sha256:...",
                "config_hash": "…", "expected_hash": "…", "image_current": True,
            },
        }
    """

    requires_command = "docker"
    default = dict

    def command(self, app_dir="/opt/srq-hpn"):
        d = shlex.quote(app_dir)
        inspect_format = (
            'container {{index .Config.Labels "com.docker.compose.service"}} {{.Name}} '
            "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} "
            '{{.State.StartedAt}} {{.Image}} {{.Config.Image}} '
            '{{index .Config.Labels "com.docker.compose.config-hash"}}'
        )
        return (
            f"if [ -f {d}/compose.yml ] && [ -f {d}/{ENV_FILE} ]; then "
            f"{compose(app_dir, 'config', '--hash', '*')} | sed 's/^/expected /'; fi; "
            f"for id in $(docker ps -aq --filter label=com.docker.compose.project={PROJECT}); do "
            f"docker inspect --format {shlex.quote(inspect_format)} \"$id\"; done; "
            f"for ref in $(docker ps -a --filter label=com.docker.compose.project={PROJECT} "
            "--format '{{.Image}}' | sort -u); do "
            "printf 'image %s %s\\n' \"$ref\" \"$(docker image inspect --format '{{.Id}}' \"$ref\" "
            "2>/dev/null || echo missing)\"; done"
        )

    def process(self, output):
        expected, images, containers = {}, {}, {}
        for line in output:
            kind, _, rest = line.partition(" ")
            fields = rest.split()
            if kind == "expected" and len(fields) == 2:
                expected[fields[0]] = fields[1]
            elif kind == "image" and len(fields) == 2:
                images[fields[0]] = fields[1]
            elif kind == "container" and len(fields) >= 7:
                service, name, state, health, started_at, image, config_image = fields[:7]
                containers[service] = {
                    "name": name.lstrip("/"),
                    "state": state,
                    "health": health,
                    "started_at": started_at,
                    "image": image,
                    "config_image": config_image,
                    "config_hash": fields[7] if len(fields) > 7 else "",
                }
        for service, info in containers.items():
            info["expected_hash"] = expected.get(service, "")
            info["image_current"] = images.get(info.pop("config_image")) == info["image"]
        for service in expected:
            containers.setdefault(service, {"state": "missing", "expected_hash": expected[service]})
        return containers


class ContainerState(FactBase):
    """
    Returns ``{"state": "running", "health": "healthy"}`` for a container, or
    ``{"state": "missing", "health": "none"}`` when it does not exist.
    """

    requires_command = "docker"

    @staticmethod
    def default():
        return {"state": "missing", "health": "none"}

    def command(self, container):
        fmt = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
        return f"docker inspect --format {shlex.quote(fmt)} {shlex.quote(container)} 2>/dev/null || echo missing none"

    def process(self, output):
        state, _, health = output[0].partition(" ")
        return {"state": state, "health": health or "none"}


class ContainerLogs(FactBase):
    """Returns the last lines a container logged (stdout and stderr)."""

    requires_command = "docker"
    default = list

    def command(self, container, tail=30):
        return f"docker logs --tail {int(tail)} {shlex.quote(container)} 2>&1 || true"

    def process(self, output):
        return list(output)


class AppRoleDrift(FactBase):
    """
    Returns how the database's limited app role differs from the wanted state
    (missing role, missing grants or default privileges, a password that differs
    from the env file), one sentence per difference; an empty list when all is well.
    """

    requires_command = "docker"
    default = list

    def command(self, container=CONTAINERS["db"]):
        return (
            f"docker exec {shlex.quote(container)} bash {INIT_SCRIPT_IN_CONTAINER} check 2>&1 "
            "|| echo 'the check itself failed (see the lines above)'"
        )

    def process(self, output):
        return [line for line in output if line.strip()]


class MigrationState(FactBase):
    """
    Returns the database's alembic revision as the api image sees it:
    ``{"current": ["0002 (head)"], "at_head": True}``.
    """

    requires_command = "docker"

    @staticmethod
    def default():
        return {"current": [], "at_head": False}

    def command(self, app_dir="/opt/srq-hpn"):
        return compose(app_dir, "run", "--rm", "-T", "migrate", "alembic", "current") + " 2>/dev/null"

    def process(self, output):
        current = [line.strip() for line in output if line.strip()]
        revisions = [line for line in current if not line.startswith(("INFO", "WARN"))]
        return {"current": revisions, "at_head": bool(revisions) and all("(head)" in r for r in revisions)}


class TextFile(FactBase):
    """Returns a small text file's content with surrounding space removed, or None."""

    def command(self, path):
        return f"cat {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output):
        return "\n".join(output).strip() or None


class GitRemoteHead(FactBase):
    """Returns the commit a repository's branch points at (``git ls-remote``), or None."""

    requires_command = "git"

    def command(self, repo, branch, ssh_command=""):
        env = f"GIT_SSH_COMMAND={shlex.quote(ssh_command)} " if ssh_command else ""
        return f"{env}git ls-remote {shlex.quote(repo)} {shlex.quote('refs/heads/' + branch)}"

    def process(self, output):
        return output[0].split()[0] if output and output[0].strip() else None


class StackHealth(FactBase):
    """
    Returns the answers of the stack's checks, made on the server through Caddy
    (with Caddy's internal CA when ``tls_internal``), as
    ``{"/": {"status": 200, "body": "..."}, ..., "http-redirect": {...}}``.
    """

    requires_command = "curl"
    default = dict

    def command(self, domain, tls_internal=False):
        d = shlex.quote(domain)
        lines = ['tmp=$(mktemp -d); trap \'rm -rf "$tmp"\' EXIT; ca=""']
        if tls_internal:
            lines.append(
                f"docker exec {CONTAINERS['caddy']} cat {CADDY_ROOT_CA} > \"$tmp/ca\" 2>/dev/null "
                '&& ca="--cacert $tmp/ca"'
            )
        for path in ("/", "/api/health", "/api/db-health"):
            lines.append(
                f"code=$(curl -sS --max-time 10 $ca --resolve {d}:443:127.0.0.1 -o \"$tmp/body\" "
                f"-w '%{{http_code}}' https://{d}{path} 2>\"$tmp/err\"); "
                f"printf 'check %s %s %s\\n' {path} \"$code\" "
                '"$(cat "$tmp/body" "$tmp/err" 2>/dev/null | head -c 300 | tr \'\\n\' \' \')"; '
                'rm -f "$tmp/body" "$tmp/err"'
            )
        lines.append(
            f"r=$(curl -sS --max-time 10 -o /dev/null --resolve {d}:80:127.0.0.1 "
            f"-w '%{{http_code}} %{{redirect_url}}' http://{d}/ 2>&1); "
            "printf 'check http-redirect %s\\n' \"$r\""
        )
        return "; ".join(lines)

    def process(self, output):
        results = {}
        for line in output:
            if not line.startswith("check "):
                continue
            _, name, rest = (line + " ").split(" ", 2)
            status, _, body = rest.partition(" ")
            results[name] = {
                "status": int(status) if status.isdigit() else 0,
                "body": body.strip(),
            }
        return results
