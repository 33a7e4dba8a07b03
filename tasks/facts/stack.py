"""Facts about the stack's containers, its compose configuration and its answers."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from tasks import layout
from tasks.commands import STACK_ENV, configured, if_installed, program, quote


class StackContainers(FactBase):
    """
    Returns the stack's containers by compose service: state, health, start time,
    image, and whether it runs the configuration and image that compose asks for now.
    One-off containers (``compose run``) are not the service's.

    .. code:: python

        {
            "db": {
                "name": "srq-hpn-db", "state": "running", "exit_code": 0, "health": "healthy",
                "started_at": "2026-11-27T19:01:02.123Z", "image": "sha256:...",
                "log_driver": "json-file", "config_hash": "…", "expected_hash": "…", "image_current": True,
            },
        }
    """

    requires_command = "docker"
    default = dict

    def command(self, app_dir=None, project=None):
        labels = '--filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.oneoff=False'
        inspect_format = (
            'container {{index .Config.Labels "com.docker.compose.service"}} {{.Name}} '
            "{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} "
            '{{.State.StartedAt}} {{.Image}} {{.Config.Image}} {{.HostConfig.LogConfig.Type}} '
            '{{index .Config.Labels "com.docker.compose.config-hash"}}'
        )
        return (
            f"d={configured('APP_DIR', layout.APP_DIR, app_dir)}; "
            f"project={configured('PROJECT', layout.PROJECT, project, STACK_ENV)}; "
            f"if [ -f \"$d/{layout.ENV_FILE}\" ]; then (cd \"$d\" && "
            f"{quote('docker', 'compose', '--env-file', layout.ENV_FILE, 'config', '--hash', '*')}) 2>/dev/null "
            "| sed 's/^/expected /'; fi; "
            f"ids=$(docker ps -aq {labels}); "
            f"[ -z \"$ids\" ] || docker inspect --format {shlex.quote(inspect_format)} $ids; "
            f"refs=$(docker ps -a {labels} --format '{{{{.Image}}}}' | sort -u); "
            "[ -z \"$refs\" ] || docker image inspect --format '{{.Id}} {{range .RepoTags}}{{.}} {{end}}' $refs "
            "2>/dev/null | while read -r id tags; do for t in $tags; do printf 'image %s %s\\n' \"$t\" \"$id\"; done; done"
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
            elif kind == "container" and len(fields) >= 9:
                service, name, state, exit_code, health, started_at, image, config_image, log_driver = fields[:9]
                containers[service] = {
                    "name": name.lstrip("/"),
                    "state": state,
                    "exit_code": int(exit_code) if exit_code.lstrip("-").isdigit() else None,
                    "health": health,
                    "started_at": started_at,
                    "image": image,
                    "config_image": config_image,
                    "log_driver": log_driver,
                    "config_hash": fields[9] if len(fields) > 9 else "",
                }
        for service, info in containers.items():
            info["expected_hash"] = expected.get(service, "")
            info["image_current"] = images.get(info["config_image"]) == info["image"]
        for service in expected:
            containers.setdefault(service, {"state": "missing", "expected_hash": expected[service]})
        return containers


class ComposeVersion(FactBase):
    """Returns the version of Docker Compose v2 on the server, or None when there is none
    (no Docker yet)."""

    def command(self):
        return "docker compose version --short 2>/dev/null || true"

    def process(self, output):
        lines = [line.strip() for line in output if line.strip()]
        return lines[0] if lines else None


class MaintenancePage(FactBase):
    """
    Returns whether Caddy's maintenance page is on (``srq-hpn-maintenance status``):
    True or False. Only a restore turns it on; one killed before it could put
    everything back leaves it on, and Caddy then answers 503 to every request.
    """

    def command(self):
        return if_installed("srq-hpn-maintenance", program("srq-hpn-maintenance", "status"), "off")

    def process(self, output):
        lines = [line.strip() for line in output if line.strip()]
        return bool(lines) and lines[-1] == "on"


class ContainerLogs(FactBase):
    """Returns the last lines a container logged (stdout and stderr)."""

    requires_command = "docker"
    default = list

    def command(self, container, tail=30):
        return f"docker logs --tail {int(tail)} {shlex.quote(container)} 2>&1 || true"

    def process(self, output):
        return list(output)


class RepoFiles(FactBase):
    """
    Returns the contract files found at the root of the app's checkout, by name, with
    their text: the compose files and ``.env.production.example``.
    """

    default = dict
    NAMES = layout.CONTRACT_FILES

    def command(self, app_dir=layout.APP_DIR):
        d = shlex.quote(app_dir)
        names = " ".join(shlex.quote(name) for name in self.NAMES)
        return f"for f in {names}; do if [ -f {d}/\"$f\" ]; then echo \"@@file $f\"; cat {d}/\"$f\"; echo; fi; done"

    def process(self, output):
        files: dict[str, list[str]] = {}
        current = None
        for line in output:
            if line.startswith("@@file "):
                current = line[len("@@file "):]
                files[current] = []
            elif current is not None:
                files[current].append(line)
        return {name: "\n".join(lines) for name, lines in files.items()}


class StackHealth(FactBase):
    """
    Returns the answers of the stack's checks, made on the server through Caddy
    (with Caddy's internal CA when ``tls_internal``, or the root certificates of the file
    ``ca_file``, a private ACME server's, instead of the system's), as
    ``{"/": {"status": 200, "body": "..."}, ..., "http-redirect": {...}}``; ``plain``: an app
    server behind the edge, asked over plain HTTP at this base URL (``http://10.0.0.5:80``),
    without the redirect.
    """

    requires_command = "curl"
    default = dict

    def command(self, domain, tls_internal=False, caddy_container=None, ca_file=None, plain=None):
        d = shlex.quote(domain)
        lines = ['tmp=$(mktemp -d); trap \'rm -rf "$tmp"\' EXIT; ca=""']
        if plain:  # an app server behind the edge: plain HTTP on its private address, no redirect to check
            for n, path in enumerate(("/", "/api/health", "/api/db-health")):
                lines.append(
                    f"{{ code=$(curl -sS --max-time 10 -H {shlex.quote('Host: ' + domain)} -o \"$tmp/body{n}\" "
                    f"-w '%{{http_code}}' {shlex.quote(plain + path)} 2>\"$tmp/err{n}\"); "
                    f"printf 'check %s %s %s\\n' {path} \"$code\" "
                    f'"$(cat "$tmp/body{n}" "$tmp/err{n}" 2>/dev/null | head -c 300 | tr \'\\n\' \' \')" > "$tmp/out{n}"; }} &'
                )
            lines.append('wait; cat "$tmp/out0" "$tmp/out1" "$tmp/out2"')
            return "\n".join(lines)
        if ca_file:
            lines.append(f"ca={shlex.quote('--cacert ' + shlex.quote(ca_file))}")
        elif tls_internal:
            caddy = configured("CADDY_CONTAINER", layout.CONTAINERS[layout.CADDY], caddy_container, STACK_ENV)
            lines.append(
                f"docker exec {caddy} cat {layout.CADDY_ROOT_CA} > \"$tmp/ca\" 2>/dev/null "
                '&& ca="--cacert $tmp/ca"'
            )
        # The checks run side by side; their lines are printed in order.
        for n, path in enumerate(("/", "/api/health", "/api/db-health")):
            lines.append(
                f"{{ code=$(curl -sS --max-time 10 $ca --resolve {d}:443:127.0.0.1 -o \"$tmp/body{n}\" "
                f"-w '%{{http_code}}' https://{d}{path} 2>\"$tmp/err{n}\"); "
                f"printf 'check %s %s %s\\n' {path} \"$code\" "
                f'"$(cat "$tmp/body{n}" "$tmp/err{n}" 2>/dev/null | head -c 300 | tr \'\\n\' \' \')" > "$tmp/out{n}"; }} &'
            )
        lines.append(
            f"{{ r=$(curl -sS --max-time 10 -o /dev/null --resolve {d}:80:127.0.0.1 "
            f"-w '%{{http_code}} %{{redirect_url}}' http://{d}/ 2>&1); "
            "printf 'check http-redirect %s\\n' \"$r\" > \"$tmp/out3\"; } &"
        )
        lines.append('wait; cat "$tmp/out0" "$tmp/out1" "$tmp/out2" "$tmp/out3"')
        return "\n".join(lines)

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


class AppWithoutTls(FactBase):
    """
    Returns the app's own answers, asked on the server straight from its containers over
    plain HTTP (not through Caddy, without TLS): the web's ``/``, the api's ``/api/health``
    and ``/api/db-health``, as ``{"/": {"status": 200, "body": "..."}, ...}``. Asked live
    only, to tell whether the app is up while HTTPS is not.
    """

    snapshot = False
    requires_command = "docker"
    default = dict

    def command(self, api_container, web_container):
        lines = ['tmp=$(mktemp -d); trap \'rm -rf "$tmp"\' EXIT']
        checks = (("/", web_container, layout.UPSTREAMS[layout.WEB]),
                  ("/api/health", api_container, layout.UPSTREAMS[layout.API]),
                  ("/api/db-health", api_container, layout.UPSTREAMS[layout.API]))
        address = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        for n, (path, container, port) in enumerate(checks):
            lines.append(
                f"ip=$(docker inspect --format {shlex.quote(address)} {shlex.quote(container)} 2>/dev/null "
                "| awk '{print $1}'); "
                f"code=$(curl -sS --max-time 5 -o \"$tmp/body{n}\" -w '%{{http_code}}' \"http://$ip:{port}{path}\" "
                f"2>\"$tmp/err{n}\"); printf 'check %s %s %s\\n' {path} \"$code\" "
                f'"$(cat "$tmp/body{n}" "$tmp/err{n}" 2>/dev/null | head -c 300 | tr \'\\n\' \' \')"'
            )
        return "\n".join(lines)

    def process(self, output):
        return StackHealth().process(output)


class ContainerVolumes(FactBase):
    """Returns the named volumes a container mounts, by mount point: ``{"/var/lib/postgresql/data": "srq-hpn_postgres_data"}``."""

    requires_command = "docker"
    default = dict

    def command(self, container):
        fmt = '{{range .Mounts}}{{if eq .Type "volume"}}{{.Destination}} {{.Name}}{{println}}{{end}}{{end}}'
        return f"docker inspect --format {shlex.quote(fmt)} {shlex.quote(container)} 2>/dev/null || true"

    def process(self, output):
        return dict(line.split(" ", 1) for line in output if " " in line)


class ImageLabels(FactBase):
    """Returns one label of each image named ("" when it has none), or None for an image
    that is not there: ``{"srq-hpn-api:3f2a1b9c0d11": "9c1e…", "postgres:16": ""}``."""

    requires_command = "docker"
    default = dict

    def command(self, images, label):
        wanted = " ".join(shlex.quote(image) for image in images)
        inspect = shlex.quote(f'{{{{.Id}}}} {{{{index .Config.Labels "{label}"}}}}')
        # Two calls whatever the number of images: the names there, then their labels.
        return (
            f"list=$(docker images --no-trunc --format '{{{{.Repository}}}}:{{{{.Tag}}}} {{{{.ID}}}}'); "
            f"for i in {wanted}; do id=$(printf '%s\\n' \"$list\" | awk -v i=\"$i\" '$1 == i {{print $2; exit}}'); "
            "if [ -n \"$id\" ]; then echo \"id $i $id\"; else echo \"missing $i\"; fi; done; "
            "ids=$(printf '%s\\n' \"$list\" | awk '{print $2}' | sort -u); "
            f"[ -z \"$ids\" ] || docker image inspect --format {inspect} $ids 2>/dev/null | sed 's/^/label /'"
        )

    def process(self, output):
        ids, labels, wanted = {}, {}, {}
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "id":
                image, _, image_id = rest.partition(" ")
                wanted[image] = image_id.strip()
            elif kind == "missing":
                wanted[rest.strip()] = None
            elif kind == "label":
                image_id, _, label = rest.partition(" ")
                ids[image_id] = label.strip().replace("<no value>", "")
        for image, image_id in wanted.items():
            labels[image] = None if image_id is None else ids.get(image_id, "")
        return labels

class ContainerRunning(FactBase):
    """
    Returns whether a container (by name) exists and runs.
    """

    requires_command = "docker"
    default = bool

    def command(self, container):
        return f"docker inspect --format '{{{{.State.Running}}}}' {shlex.quote(container)} 2>/dev/null || true"

    def process(self, output):
        return any(line.strip() == "true" for line in output)
