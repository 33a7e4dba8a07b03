"""Step 2: Docker Engine and Compose v2, with a daemon.json from settings.

OS differences live in the tables below; the deploy function only reads them.
"""

from __future__ import annotations

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.deb import DebArch, DebPackages
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import apt, files, server, systemd

from tasks import layout, render
from tasks.settings import Settings

# Packages of the "distro" method, by (distribution, major version). Debian 12 has
# no Compose v2 package, so it needs the official repository.
DISTRO_PACKAGES = {
    ("debian", 13): ["docker.io", "docker-cli", "docker-compose", "docker-buildx"],
    ("ubuntu", 22): ["docker.io", "docker-compose-v2", "docker-buildx"],
    ("ubuntu", 24): ["docker.io", "docker-compose-v2", "docker-buildx"],
}
OFFICIAL_PACKAGES = [
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
]
# Removed before installing from Docker's repository (Docker's own instructions).
OFFICIAL_CONFLICTS = [
    "docker.io",
    "docker-doc",
    "docker-cli",
    "docker-compose",
    "docker-compose-v2",
    "docker-buildx",
    "podman-docker",
    "containerd",
    "runc",
]
SUPPORTED = {("debian", 12), ("debian", 13), ("ubuntu", 22), ("ubuntu", 24)}
# What the deploy and its checks run on the server besides Docker (jq writes and
# reads the backups' manifests and the drills' records; Docker decompresses the
# layers it pulls with unpigz, on every core, when pigz is installed), what the
# off-server copy of the backups needs, and, with log shipping, systemd-journal-upload
# (layout.LOG_SHIPPING_PACKAGE). Installed with Docker: one apt transaction.
BASE_PACKAGES = ["ca-certificates", "curl", "openssl", "iproute2", "jq", "pigz"]
OFFSITE_PACKAGES = ["restic", "openssh-client"]
KEYRING = "/etc/apt/keyrings/docker.asc"


class PlatformError(PyinfraError):
    """The server's OS or the chosen install method is not supported."""


def platform(distro: dict) -> tuple[str, int, str]:
    """(id, major version, codename) of a LinuxDistribution fact, or PlatformError."""
    meta = distro.get("release_meta") or {}
    distro_id = (meta.get("ID") or distro.get("name") or "").lower()
    major = distro.get("major")
    codename = meta.get("VERSION_CODENAME") or meta.get("UBUNTU_CODENAME") or ""
    if (distro_id, major) not in SUPPORTED:
        raise PlatformError(
            f"unsupported OS {distro.get('name')} {major}: the deploy supports "
            "Debian 12/13 and Ubuntu 22.04/24.04"
        )
    return distro_id, major, codename


def packages_for(method: str, distro_id: str, major: int) -> list[str]:
    if method == "official":
        return list(OFFICIAL_PACKAGES)
    try:
        return list(DISTRO_PACKAGES[(distro_id, major)])
    except KeyError:
        raise PlatformError(
            f"{distro_id} {major} has no Docker Compose v2 package of its own; "
            "set docker_install_method = 'official'"
        ) from None


def official_repo_line(repo_url: str, distro_id: str, codename: str, arch: str) -> str:
    return f"deb [arch={arch} signed-by={KEYRING}] {repo_url.rstrip('/')}/{distro_id} {codename} stable"


@deploy("Install Docker Engine and Compose v2")
def install(settings: Settings, images: list[str] = ()):
    """Docker, and on a fresh install the pull of ``images`` (those the app's compose
    file names, the database's first) started at once, in the background: the steps
    up to the database's start run meanwhile. Best effort: Compose pulls (and reports)
    whatever this does not."""
    distro_id, major, codename = platform(host.get_fact(LinuxDistribution))
    method = settings.docker_install_method
    packages = packages_for(method, distro_id, major)

    files.directory(name="Ensure /etc/docker exists", path="/etc/docker", mode="755")
    daemon_config = files.put(
        name="Ensure /etc/docker/daemon.json sets log rotation and registries",
        src=StringIO(render.daemon_json(settings)),
        dest="/etc/docker/daemon.json",
        mode="644",
    )

    installed = host.get_fact(DebPackages)
    repo_changed = False
    if method == "official":
        apt.packages(
            name="Ensure distribution Docker packages are absent (they conflict with Docker's)",
            packages=OFFICIAL_CONFLICTS,
            present=False,
        )
        missing_base = [p for p in BASE_PACKAGES if p not in installed]
        if missing_base:
            apt.update(name="Update apt's package lists")
            apt.packages(name=f"Ensure {', '.join(missing_base)} are installed", packages=missing_base)
        files.directory(name="Ensure /etc/apt/keyrings exists", path="/etc/apt/keyrings", mode="755")
        files.download(
            name="Ensure Docker's apt signing key is installed",
            src=f"{settings.docker_official_repo_url.rstrip('/')}/{distro_id}/gpg",
            dest=KEYRING,
            mode="644",
        )
        repo = files.put(
            name="Ensure Docker's apt repository is configured (signed-by keyring)",
            src=StringIO(
                official_repo_line(settings.docker_official_repo_url, distro_id, codename, host.get_fact(DebArch))
                + "\n"
            ),
            dest="/etc/apt/sources.list.d/docker.list",
            mode="644",
        )
        repo_changed = repo.will_change

    tools = (BASE_PACKAGES + (OFFSITE_PACKAGES if settings.offsite else [])
             + ([layout.LOG_SHIPPING_PACKAGE] if settings.log_shipping_url else []))
    missing = [p for p in tools + packages if p not in installed]
    fresh_install = any(p not in installed for p in packages)
    if missing or repo_changed:
        apt.update(name="Update apt's package lists")
    if missing:
        apt.packages(name=f"Ensure {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} installed",
                     packages=missing, no_recommends=True)

    systemd.service(
        name="Ensure Docker is started and enabled at boot",
        service="docker",
        running=True,
        enabled=True,
        # A fresh install starts the daemon with daemon.json already in place.
        restarted=bool(daemon_config.will_change) and not fresh_install,
    )
    # One apt run, then the pulls: side by side with apt, a pull took half as long again.
    if fresh_install and images:
        server.shell(
            name=f"Start pulling {', '.join(images)} (in the background, while the next steps run)",
            commands=[early_pull_command(images)],
        )


def early_pull_command(images: list[str]) -> str:
    """The database's image first, alone: its process id in EARLY_PULL_PID until it is
    pulled (the release's builds wait for that, see srq-hpn-images); then the others."""
    pid = shlex.quote(layout.EARLY_PULL_PID)
    first, *others = [f"docker pull -q {shlex.quote(image)}" for image in images]
    script = "; ".join([f"echo $$ > {pid}", first, f"rm -f {pid}", *others])
    return f"setsid sh -c {shlex.quote(script)} </dev/null >/dev/null 2>&1 &"
