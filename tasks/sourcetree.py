"""A local checkout of the app, as it is shipped to the server (pure; unit-tested).

The files shipped are the repository's: in a git work tree, its tracked files and
its untracked files that are not ignored (so a local ``.env.local`` or
``node_modules`` never leaves this machine); elsewhere every file but the usual
caches and environments. Their manifest (``sha256  path`` lines, the format of
``sha256sum``) identifies the upload: its checksum is the source revision.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tasks.digest import sha256

# Never shipped when the checkout is not a git work tree.
EXCLUDES = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".next", ".env", ".env.local"}


class SourceError(ValueError):
    """The local checkout cannot be shipped; the message says why."""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60)


def is_git_work_tree(root: Path) -> bool:
    try:
        done = _git(root, "rev-parse", "--is-inside-work-tree")
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == b"true"


def files(root: Path) -> list[str]:
    """Relative paths of the files to ship, in the server's sort order (bytes)."""
    if is_git_work_tree(root):
        done = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        if done.returncode != 0:
            raise SourceError(f"git ls-files failed in {root}: {done.stderr.decode(errors='replace').strip()}")
        names = {name for name in done.stdout.decode().split("\0") if name}
        paths = [name for name in names if (root / name).is_file() and not (root / name).is_symlink()]
    else:
        paths = [
            path.relative_to(root).as_posix()
            for path in root.rglob("*")
            if path.is_file() and not path.is_symlink()
            and not any(part in EXCLUDES for part in path.relative_to(root).parts)
        ]
    bad = [p for p in paths if "\n" in p or "\\" in p]
    if bad:
        raise SourceError(f"file names with a newline or backslash cannot be shipped: {bad[:3]}")
    return sorted(paths, key=lambda p: p.encode())


def manifest(root: Path, paths: list[str]) -> str:
    """``sha256sum`` lines of the files (the server checks them with ``sha256sum -c``)."""
    return "".join(f"{sha256((root / path).read_bytes())}  {path}\n" for path in paths)


def archive(root: Path, paths: list[str]) -> bytes:
    """A reproducible .tar.gz of the files: same files, same bytes (owners, times and
    gzip header fixed; only content, names and the executable bit count)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            data = (root / path).read_bytes()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o755 if (root / path).stat().st_mode & 0o111 else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def commit(root: Path) -> str | None:
    """The checkout's git commit, with "+changes" when its files differ from it."""
    if not is_git_work_tree(root):
        return None
    head = _git(root, "rev-parse", "HEAD")
    if head.returncode != 0:
        return None
    dirty = _git(root, "status", "--porcelain", "--", ".").stdout.strip()
    return head.stdout.decode().strip()[:12] + ("+changes" if dirty else "")


@dataclass(frozen=True)
class Upload:
    """What an upload ships: the files' manifest, their archive, and the revision."""

    root: Path
    paths: tuple[str, ...]
    manifest: str
    archive: bytes
    commit: str | None

    @property
    def manifest_sha(self) -> str:
        return sha256(self.manifest)

    @property
    def migrations(self) -> str:
        """The checksum of the migration scripts (alembic's ``versions/``): the same for
        two uploads means the same newest migration."""
        lines = [line for line in self.manifest.splitlines() if "/versions/" in line and line.endswith(".py")]
        return sha256("\n".join(lines))[:16] if lines else ""

    @property
    def revision(self) -> str:
        """The source revision: the first 12 hex digits of the manifest's checksum."""
        return self.manifest_sha[:12]

    def text(self, name: str) -> str | None:
        """A shipped file's text (None when the upload does not have it)."""
        return (self.root / name).read_text() if name in self.paths else None

    @classmethod
    def of(cls, root: Path) -> "Upload":
        paths = files(root)
        return cls(root, tuple(paths), manifest(root, paths), archive(root, paths), commit(root))
