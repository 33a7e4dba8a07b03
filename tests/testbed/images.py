"""Build the testbed's images locally, from Debian packages only.

No registry is reachable from the test machines, so nothing is ever pulled: the
`base` image is a debootstrap of Debian 13 imported with `docker import`, and every
other image is built from a recipe directory `images/<name>/` whose Dockerfile starts

    ARG BASE_IMAGE
    FROM ${BASE_IMAGE}

Each image is tagged `srq-hpn-testbed/<name>:<12 hex>`, a hash of its recipe (every
file of its directory plus the base's hash; for the base, the debootstrap command line
and this builder's recipe constants), so a second run finds the tags and builds nothing.

    python -m tests.testbed.images                # build what is missing, print tags and timings
    python -m tests.testbed.images --list         # show the tags and whether they exist
    python -m tests.testbed.images server         # only these images (and the base)
    python -m tests.testbed.images --prune        # also remove older tags of the testbed images
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

HERE = Path(__file__).resolve().parent
RECIPES = HERE / "images"
REPOSITORY = "srq-hpn-testbed"
LABEL = "srq-hpn-testbed.recipe"
PARALLEL_BUILDS = 3
LOCK_FILE = Path(tempfile.gettempdir()) / "srq-hpn-testbed-images.lock"

# --- The base image's recipe (all of it is hashed into the base's tag) -------------
BASE_RECIPE_VERSION = "1"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ["ca-certificates"]
DEBOOTSTRAP = [
    "debootstrap",
    "--variant=minbase",
    f"--include={','.join(BASE_PACKAGES)}",
    SUITE,
    "{rootfs}",
    MIRROR,
]
# Files of the host that debootstrap copies in, and caches: emptied before import.
BASE_CLEANUP = ["var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/log/*.log"]
BASE_TRUNCATE = ["etc/resolv.conf", "etc/hostname"]
# The image configuration docker import gives the root file system (as Debian's images).
BASE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["bash"]',
]

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """A testbed image could not be built; the message carries the build log's tail."""


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def base_hash() -> str:
    """Hash of everything that decides what the base image contains."""
    recipe = [
        BASE_RECIPE_VERSION,
        " ".join(DEBOOTSTRAP),
        "\n".join(BASE_CLEANUP),
        "\n".join(BASE_TRUNCATE),
        "\n".join(BASE_CHANGES),
    ]
    return _digest(part.encode() for part in recipe)


def recipe_names() -> list[str]:
    """The derived images: every directory of images/ that holds a Dockerfile."""
    return sorted(p.parent.name for p in RECIPES.glob("*/Dockerfile"))


def recipe_hash(name: str, base: str | None = None) -> str:
    """Hash of a recipe directory (paths, executable bits, contents) and its base."""
    directory = RECIPES / name
    if not (directory / "Dockerfile").is_file():
        raise ImageBuildError(f"no recipe for image {name!r}: {directory}/Dockerfile is missing")
    parts = [(base or base_hash()).encode()]
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            mode = b"x" if path.stat().st_mode & 0o111 else b"-"
            parts += [path.relative_to(directory).as_posix().encode(), mode, path.read_bytes()]
    return _digest(parts)


def tags() -> dict[str, str]:
    """{name: tag} for the base and every recipe, as they would be built now."""
    base = base_hash()
    result = {"base": f"{REPOSITORY}/base:{base}"}
    for name in recipe_names():
        result[name] = f"{REPOSITORY}/{name}:{recipe_hash(name, base)}"
    return result


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def _fail(what: str, log_path: Path, returncode: int, tail: int = 60) -> ImageBuildError:
    lines = log_path.read_text(errors="replace").splitlines()
    shown = "\n".join("    " + line for line in lines[-tail:])
    return ImageBuildError(
        f"{what} failed (exit {returncode}); last {min(tail, len(lines))} lines of {log_path}:\n{shown}"
    )


def _log_file(name: str) -> Path:
    fd, path = tempfile.mkstemp(prefix=f"srq-hpn-testbed-{name}-", suffix=".log")
    os.close(fd)
    return Path(path)


def build_base(tag: str) -> None:
    """debootstrap Debian 13 into a temporary directory and import it as `tag`."""
    if not shutil.which("debootstrap") and not Path("/usr/sbin/debootstrap").exists():
        raise ImageBuildError(
            "debootstrap is needed to build the testbed's base image "
            "(apt-get install debootstrap, or run tests/testbed/host-docker.sh)"
        )
    log_path = _log_file("base")
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    with tempfile.TemporaryDirectory(prefix="srq-hpn-rootfs-") as rootfs:
        command = [part.replace("{rootfs}", rootfs) for part in DEBOOTSTRAP]
        with log_path.open("w") as log:
            result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        if result.returncode != 0:
            raise _fail("debootstrap", log_path, result.returncode)
        root = Path(rootfs)
        for pattern in BASE_CLEANUP:
            for path in root.glob(pattern):
                if path.is_file() or path.is_symlink():
                    path.unlink()
                elif path.is_dir():
                    shutil.rmtree(path)
        for relative in BASE_TRUNCATE:
            path = root / relative
            if path.is_symlink():
                path.unlink()
            path.write_text("")
        changes = [arg for change in BASE_CHANGES for arg in ("--change", change)]
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE
        )
        with log_path.open("a") as log:
            result = subprocess.run(
                ["docker", "import", *changes, "--message", f"debootstrap {SUITE} ({base_hash()})",
                 "-", tag],
                stdin=tar.stdout, stdout=log, stderr=subprocess.STDOUT,
            )
        tar.stdout.close()
        tar.wait()
        if result.returncode != 0 or tar.returncode != 0:
            raise _fail("docker import of the base image", log_path, result.returncode or tar.returncode)
    log_path.unlink()


def build_recipe(name: str, tag: str, base_tag: str) -> None:
    """docker build images/<name>/ FROM the base; the log is shown only on failure."""
    log_path = _log_file(name)
    command = [
        "docker", "build", "--force-rm",
        "--build-arg", f"BASE_IMAGE={base_tag}",
        "--label", f"{LABEL}={tag.rsplit(':', 1)[1]}",
        "--tag", tag,
        str(RECIPES / name),
    ]
    with log_path.open("w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise _fail(f"docker build of {name} ({' '.join(command)})", log_path, result.returncode)
    log_path.unlink()


@contextlib.contextmanager
def _build_lock():
    """One builder at a time on this machine (parallel test runs share the images)."""
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_one(name: str, wanted: dict[str, str], say: Log) -> None:
    tag = wanted[name]
    if image_exists(tag):
        say(f"{name:12} reused {tag}")
        return
    started = time.monotonic()
    say(f"{name:12} building {tag} ...")
    if name == "base":
        build_base(tag)
    else:
        build_recipe(name, tag, wanted["base"])
    say(f"{name:12} built  {tag} in {time.monotonic() - started:.1f}s")


def ensure_images(names: Iterable[str] | None = None, log: Log | None = print) -> dict[str, str]:
    """Build whichever of the images are missing; return {name: tag}.

    `names` defaults to every image (the base and every recipe directory); the base
    is always ensured since every other image derives from it.
    """
    say = log or (lambda _message: None)
    wanted = tags()
    names = list(names) if names is not None else list(wanted)
    unknown = [name for name in names if name not in wanted]
    if unknown:
        raise ImageBuildError(f"unknown testbed image(s) {unknown}; known: {sorted(wanted)}")
    with _build_lock():
        _ensure_one("base", wanted, say)
        derived = [name for name in names if name != "base"]
        # Derived images only depend on the base: build them side by side (apt-bound).
        with ThreadPoolExecutor(max_workers=PARALLEL_BUILDS) as pool:
            for future in [pool.submit(_ensure_one, name, wanted, say) for name in derived]:
                future.result()
    return {name: wanted[name] for name in names}


def prune(log: Log = print) -> None:
    """Remove tags of testbed images that no longer match their recipe."""
    current = set(tags().values())
    listed = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{REPOSITORY}/*"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    for tag in listed:
        repository, _, version = tag.rpartition(":")
        if tag not in current and len(version) == 12 and all(c in "0123456789abcdef" for c in version):
            subprocess.run(["docker", "image", "rm", tag], capture_output=True)
            log(f"removed stale {tag}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed.images", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="images to ensure (default: all)")
    parser.add_argument("--list", action="store_true", help="show the tags and whether they exist; build nothing")
    parser.add_argument("--prune", action="store_true", help="remove outdated tags of the testbed images")
    args = parser.parse_args(argv)
    if args.list:
        for name, tag in tags().items():
            print(f"{name:12} {tag}  {'present' if image_exists(tag) else 'missing'}")
        return 0
    started = time.monotonic()
    try:
        ensure_images(args.names or None)
    except ImageBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"images ready in {time.monotonic() - started:.1f}s")
    if args.prune:
        prune()
    return 0


if __name__ == "__main__":
    sys.exit(main())
