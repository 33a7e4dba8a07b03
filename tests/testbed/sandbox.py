"""A long-lived local sandbox: the testbed's registry and ONE fresh server container
(`srq-hpn-sandbox`), deployed with the real CLI, to try the deploy by hand.

    python -m tests.testbed.sandbox up            # start (or reuse) it and deploy the sample app
    python -m tests.testbed.sandbox up --app ../srq-hpn --settings group_data/production.py
                                                  # your own app and settings, on a throwaway server
    python -m tests.testbed.sandbox up --real-images   # pull the app's images from Docker Hub
    python -m tests.testbed.sandbox up --no-deploy
    python -m tests.testbed.sandbox status
    python -m tests.testbed.sandbox down          # remove all of it

Its SSH key, inventory and Caddy's root certificate are kept in .sandbox/ (gitignored).
Everything it creates is labelled `srq-hpn-sandbox=1`, which the test suite's sweep
never touches. Ports are published on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker

from tasks.settings import SETTING_PREFIXES, local_path
from tests.testbed import harness

NAME = "srq-hpn-sandbox"
STATE_DIR = harness.REPO_ROOT / ".sandbox"
KEY = STATE_DIR / "id_ed25519"
INVENTORY = STATE_DIR / "inventory.json"
CADDY_CA = STATE_DIR / "caddy-root.crt"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _ensure_key() -> Path:
    if not KEY.exists() or not Path(f"{KEY}.pub").exists():
        harness.generate_ssh_key(STATE_DIR, KEY.name)
    return KEY


def _server(testbed: harness.Testbed) -> harness.Server:
    """The sandbox server: reused if it runs, restarted if stopped, else started afresh."""
    client = docker.from_env()
    try:
        container = client.containers.get(NAME)
    except docker.errors.NotFound:
        container = None
    if container is not None and not KEY.exists():
        say(f"{NAME} exists but its key {KEY} is gone: replacing the server")
        container.remove(force=True, v=True)
        container = None
    if container is None:
        _ensure_key()
        say(f"Starting the server container {NAME}")
        started = time.monotonic()
        server = testbed.start_server("sandbox", key_path=KEY, name=NAME)
        say(f"{NAME} is ready (systemd up, sshd answering) in {time.monotonic() - started:.1f}s")
        return server
    if container.status != "running":
        say(f"Starting the stopped server container {NAME}")
        container.start()
    server = harness.Server.attach(NAME, KEY)
    if container.image.tags and testbed.images["server"] not in container.image.tags:
        say(f"note: {NAME} runs an older server image ({container.image.tags[0]}); "
            "`down` then `up` to start from the current one")
    server.wait_until_ready()
    say(f"Reusing the running server container {NAME}")
    return server


# What the sandbox itself needs, whatever the operator's settings say: Caddy's own CA (no
# public ACME server can reach it).
SANDBOX_OWN = {"caddy_tls": "internal"}


def parse_data(items: list[str]) -> dict[str, Any]:
    """`--data key=value` as pyinfra reads it: a JSON value where it parses as one
    (true, 3, ["a"]), else the text."""
    data = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --data takes key=value, got {item!r}")
        try:
            data[key] = json.loads(value)
        except ValueError:
            data[key] = {"True": True, "False": False}.get(value, value)
    return data


def sandbox_settings(app: Path | None = None, settings_file: Path | None = None, data: dict | None = None,
                     real_images: bool = False) -> dict[str, Any]:
    """The sandbox's settings: the testbed's, then the operator's own (a group_data file
    and --data), then what the sandbox itself needs. With ``real_images`` the app's
    images come from Docker Hub, not the testbed's stand-ins (pure; unit-tested)."""
    settings = harness.testbed_settings(app.resolve() if app else harness.SAMPLE_APP)
    if real_images:
        settings.pop("docker_registry_mirrors")
        settings.pop("docker_insecure_registries")
    if settings_file is not None:
        own = {key: value for key, value in runpy.run_path(str(settings_file)).items() if not key.startswith("_")
               and key.startswith(SETTING_PREFIXES)}
        settings.update(own)
        if app is None and "srq_hpn_app_local_path" in own:
            settings["srq_hpn_app_local_path"] = str(local_path(own["srq_hpn_app_local_path"]))
    settings.update(data or {})
    if app is not None:
        settings["srq_hpn_app_local_path"] = str(app.resolve())
        settings["srq_hpn_app_source"] = "upload"
    settings.update(SANDBOX_OWN)
    return settings


def up(deploy: bool, settings: dict[str, Any] | None = None) -> int:
    settings = settings or sandbox_settings()
    STATE_DIR.mkdir(exist_ok=True)
    say("Ensuring the testbed images (built once, then reused)")
    testbed = harness.Testbed(sandbox=True, name=NAME)
    testbed.start()
    say(f"Registry {harness.REGISTRY_HOST} holds the stand-ins (127.0.0.1:{testbed.registry_port} from here)")
    server = _server(testbed)
    INVENTORY.write_text(json.dumps({"sandbox": [server.inventory_entry(**settings)]}, indent=2) + "\n")
    say(f"Wrote {_relative(INVENTORY)}")

    if deploy:
        say(f"Deploying {settings['srq_hpn_app_local_path']}: pyinfra inventory.py deploy.py -y")
        env = {**os.environ, "SRQ_HPN_INVENTORY": str(INVENTORY)}
        done = subprocess.run([harness.pyinfra_command(), "inventory.py", "deploy.py", "-y"],
                              cwd=harness.REPO_ROOT, env=env)
        if done.returncode != 0:
            print(file=sys.stderr)
            harness.dump_diagnostics(server, out=sys.stderr)
            print(f"\nThe deploy failed (exit {done.returncode}); the sandbox is left up to look at.",
                  file=sys.stderr)
            _print_usage(server, deployed=False, domain=settings["srq_hpn_domain"])
            return done.returncode
        harness.caddy_root_ca(server, CADDY_CA)
        say(f"Wrote Caddy's root certificate to {_relative(CADDY_CA)}")
    _print_usage(server, deployed=deploy, domain=settings["srq_hpn_domain"])
    return 0


def _print_usage(server: harness.Server, deployed: bool, domain: str = harness.DOMAIN) -> None:
    port = server.https_port
    inventory = _relative(INVENTORY)
    lines = ["", f"The sandbox server {NAME} is up (SSH on 127.0.0.1:{server.ssh_port})."]
    if deployed:
        lines += [
            f"The stack answers at https://{domain}:{port}/ (resolve {domain} to 127.0.0.1):",
            f"  curl --resolve {domain}:{port}:127.0.0.1 --cacert {_relative(CADDY_CA)} "
            f"https://{domain}:{port}/api/health",
        ]
    else:
        lines += [
            "Deploy to it:",
            f"  SRQ_HPN_INVENTORY={inventory} .venv/bin/pyinfra inventory.py deploy.py -y",
        ]
    lines += [
        "Facts, as for any server:",
        f"  SRQ_HPN_INVENTORY={inventory} .venv/bin/pyinfra inventory.py fact server.LinuxDistribution",
        "A shell on it:",
        f"  ssh -i {_relative(KEY)} -p {server.ssh_port} -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null root@127.0.0.1",
        "Tear it down:",
        "  python -m tests.testbed.sandbox down",
    ]
    print("\n".join(lines))


def down() -> int:
    removed = harness.sweep(label=harness.SANDBOX_LABEL)
    for line in removed:
        say(f"removed {line}")
    for path in (INVENTORY, CADDY_CA, KEY, Path(f"{KEY}.pub")):
        if path.exists():
            path.unlink()
            say(f"removed {_relative(path)}")
    if STATE_DIR.is_dir() and not any(STATE_DIR.iterdir()):
        STATE_DIR.rmdir()
    if not removed:
        say("no sandbox was running")
    return 0


def status() -> int:
    client = docker.from_env()
    containers = client.containers.list(all=True, filters={"label": f"{harness.SANDBOX_LABEL}=1"})
    if not containers:
        say("no sandbox (python -m tests.testbed.sandbox up)")
        return 1
    for container in containers:
        ports = ", ".join(
            f"{binding['HostIp']}:{binding['HostPort']}->{port}"
            for port, bindings in (container.ports or {}).items() for binding in (bindings or [])
        )
        print(f"{container.name:28} {container.status:10} {ports}")
    try:
        server = harness.Server.attach(NAME, KEY)
    except (docker.errors.NotFound, harness.TestbedError):
        return 1
    if server.status() == "running":
        print(f"\nsystemd on {NAME}: {server.system_state()}")
        _code, output = server.exec("docker ps --format '{{.Names}}\t{{.Status}}' 2>&1", check=False)
        print(f"containers on {NAME}:\n{output.rstrip() or '(none)'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed.sandbox",
                                     description="A local sandbox server to try the deploy on.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start (or reuse) the sandbox and deploy to it")
    start.add_argument("--no-deploy", action="store_true", help="only start the server")
    start.add_argument("--app", type=Path, help="your app's checkout (default: the bundled sample app)")
    start.add_argument("--settings", type=Path, metavar="FILE",
                       help="a settings file such as group_data/production.py (the sandbox keeps Caddy's own CA)")
    start.add_argument("--data", action="append", default=[], metavar="KEY=VALUE", help="one setting, as pyinfra's")
    start.add_argument("--real-images", action="store_true",
                       help="pull the app's images from Docker Hub (this machine and the server must reach it) "
                            "instead of the testbed's stand-ins")
    commands.add_parser("down", help="remove the sandbox's containers, network and volumes")
    commands.add_parser("status", help="show what runs")
    args = parser.parse_args(argv)
    ok, detail = harness.docker_available()
    if not ok:
        print(f"error: no Docker engine answers ({detail}); try bash tests/testbed/host-docker.sh",
              file=sys.stderr)
        return 2
    if args.command == "up":
        for path, what in ((args.app, "--app"), (args.settings, "--settings")):
            if path is not None and not path.exists():
                print(f"error: {what} {path} does not exist", file=sys.stderr)
                return 2
        return up(deploy=not args.no_deploy, settings=sandbox_settings(args.app, args.settings,
                                                                       parse_data(args.data), args.real_images))
    if args.command == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())
