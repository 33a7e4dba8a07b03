"""How long each phase of the testbed and of the deploy takes, on this machine.

    .venv/bin/python -m benchmarks.deploy_phases          # images as they are (warm if built)
    .venv/bin/python -m benchmarks.deploy_phases --cold   # remove the testbed images first

Prints one line per phase, in seconds. Runs the real pyinfra CLI against a server
container of its own, like the integration tests, and removes everything it started.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from tests.testbed import harness, images


def timed(label: str, figures: dict, func):
    started = time.monotonic()
    result = func()
    figures[label] = time.monotonic() - started
    print(f"{label:<44} {figures[label]:7.1f} s", flush=True)
    return result


def remove_testbed_images() -> None:
    listed = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                             f"{images.REPOSITORY}/*"], capture_output=True, text=True, check=True).stdout.split()
    if listed:
        subprocess.run(["docker", "image", "rm", "-f", *listed], capture_output=True, check=False)


def deploy(server, testbed, *args):
    run = harness.run_pyinfra(server.inventory(**testbed.settings()), "deploy.py", "-y", "--json", *args)
    if run.returncode != 0:
        raise SystemExit(f"deploy failed:\n{run.describe()}")
    return run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="remove the testbed images first (rebuild all)")
    options = parser.parse_args(argv)

    ok, detail = harness.docker_available()
    if not ok:
        print(f"needs a Docker engine: {detail}", file=sys.stderr)
        return 2
    figures: dict[str, float] = {}
    if options.cold:
        remove_testbed_images()
    timed("images (cold)" if options.cold else "images (as found)", figures, lambda: images.ensure_images(log=None))
    timed("images (warm: nothing to build)", figures, lambda: images.ensure_images(log=None))
    testbed = harness.Testbed(log=None)
    try:
        timed("testbed: network, registry, push stand-ins", figures, testbed.start)
        server = timed("server container to sshd ready", figures, lambda: testbed.start_server("bench"))
        timed("fresh deploy (bare server to verified stack)", figures, lambda: deploy(server, testbed))
        second = timed("second deploy (nothing changed)", figures, lambda: deploy(server, testbed))
        timed("dry run (--dry)", figures, lambda: harness.run_pyinfra(
            server.inventory(**testbed.settings()), "deploy.py", "--dry"))
        print(f"{'operations changed by the second deploy':<44} {len(second.changed_operations()):7d}")
    finally:
        testbed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
