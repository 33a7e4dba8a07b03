"""The Docker install plan per platform (the combinations the integration tests cannot reach)."""

import pytest

from tasks.docker import (
    OFFICIAL_PACKAGES,
    PlatformError,
    official_repo_line,
    packages_for,
    platform,
)


def distro(name, major, codename):
    return {"name": name, "major": major, "release_meta": {"ID": name.lower(), "VERSION_CODENAME": codename}}


@pytest.mark.parametrize(
    "fact, expected",
    [
        (distro("Debian", 12, "bookworm"), ("debian", 12, "bookworm")),
        (distro("Debian", 13, "trixie"), ("debian", 13, "trixie")),
        (distro("Ubuntu", 22, "jammy"), ("ubuntu", 22, "jammy")),
        (distro("Ubuntu", 24, "noble"), ("ubuntu", 24, "noble")),
    ],
)
def test_supported_platforms(fact, expected):
    assert platform(fact) == expected


@pytest.mark.parametrize("fact", [distro("Debian", 11, "bullseye"), distro("Ubuntu", 20, "focal"), distro("Fedora", 40, "")])
def test_unsupported_platforms_are_refused(fact):
    with pytest.raises(PlatformError, match="supports Debian 12/13 and Ubuntu 22.04/24.04"):
        platform(fact)


def test_official_packages_everywhere():
    for key in [("debian", 12), ("debian", 13), ("ubuntu", 22), ("ubuntu", 24)]:
        assert packages_for("official", *key) == OFFICIAL_PACKAGES
    assert OFFICIAL_PACKAGES == ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"]


def test_distro_packages():
    assert packages_for("distro", "debian", 13)[:3] == ["docker.io", "docker-cli", "docker-compose"]
    assert packages_for("distro", "ubuntu", 24)[:2] == ["docker.io", "docker-compose-v2"]
    with pytest.raises(PlatformError, match="no Docker Compose v2 package"):
        packages_for("distro", "debian", 12)


def test_official_repo_line_uses_signed_by_keyring():
    assert official_repo_line("https://download.docker.com/linux/", "debian", "trixie", "amd64") == (
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] "
        "https://download.docker.com/linux/debian trixie stable"
    )
