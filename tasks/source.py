"""Step 5: the app's source on the server, in <app_dir>/src.

"upload" sends a reproducible archive of a local checkout (only when its content
changed); "git" keeps a clean checkout of a branch, with an optional deploy key.
"""

from __future__ import annotations

from pathlib import Path

from pyinfra.api import HiddenValue, deploy
from pyinfra.operations import apt, files

from tasks import render
from tasks.operations import git_checkout, private_file, source_archive
from tasks.settings import Settings

DEPLOY_KEY = "/root/.ssh/srq-hpn-deploy-key"


@deploy("Ship the app's source")
def install(settings: Settings) -> str | None:
    """Returns the source's revision when it is known locally (upload), else None."""
    app_dir = settings.app_dir
    revision_file = f"{app_dir}/.state/source-revision"

    if settings.app_source == "upload":
        data = render.source_archive(settings.local_source_path())
        source_archive(
            name=f"Ensure {app_dir}/src holds the local checkout {settings.app_local_path}",
            archive_path=f"{app_dir}/.state/source.tar.gz",
            data=data,
            dest=f"{app_dir}/src",
            revision_file=revision_file,
        )
        return render.sha256(data)

    apt.packages(name="Ensure git is installed", packages=["git", "openssh-client"], no_recommends=True)
    ssh_command = ""
    if settings.app_git_deploy_key:
        files.directory(name="Ensure /root/.ssh exists", path="/root/.ssh", mode="700")
        private_file(
            name=f"Ensure the deploy key is installed at {DEPLOY_KEY} (0600)",
            path=DEPLOY_KEY,
            content=HiddenValue(Path(settings.app_git_deploy_key).expanduser().read_text()),
            preview="(private key)",
        )
        ssh_command = f"ssh -i {DEPLOY_KEY} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
    git_checkout(
        name=f"Ensure {app_dir}/src is {settings.app_git_repo} at the newest {settings.app_git_branch}",
        repo=settings.app_git_repo,
        branch=settings.app_git_branch,
        dest=f"{app_dir}/src",
        revision_file=revision_file,
        ssh_command=ssh_command,
    )
    return None
