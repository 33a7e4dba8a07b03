"""A local checkout as it is shipped: which files, their manifest, their archive."""

import io
import subprocess
import tarfile

import pytest

from tasks import sourcetree


def make_app(root):
    (root / "apps/api/__pycache__").mkdir(parents=True)
    (root / "node_modules/x").mkdir(parents=True)
    (root / "apps/api/main.py").write_text("print('hi')\n")
    (root / "apps/api/__pycache__/main.pyc").write_bytes(b"junk")
    (root / "node_modules/x/index.js").write_text("junk")
    (root / ".env.local").write_text("LOCAL_SECRET=1\n")
    (root / "compose.yml").write_text("services: {}\n")
    run = root / "apps/run.sh"
    run.write_text("#!/bin/sh\n")
    run.chmod(0o755)


def git(root, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=root, check=True,
                   capture_output=True)


def test_plain_directory_skips_caches_and_local_env(tmp_path):
    make_app(tmp_path)
    assert sourcetree.files(tmp_path) == ["apps/api/main.py", "apps/run.sh", "compose.yml"]


def test_git_work_tree_ships_tracked_and_unignored_files_only(tmp_path):
    make_app(tmp_path)
    (tmp_path / ".gitignore").write_text(".env.local\nnode_modules/\n__pycache__/\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".gitignore", "compose.yml")
    git(tmp_path, "commit", "-qm", "x")
    (tmp_path / "untracked.txt").write_text("new\n")
    assert sourcetree.files(tmp_path) == [".gitignore", "apps/api/main.py", "apps/run.sh", "compose.yml",
                                          "untracked.txt"]
    assert sourcetree.commit(tmp_path).endswith("+changes")


def test_manifest_is_what_sha256sum_checks(tmp_path):
    make_app(tmp_path)
    upload = sourcetree.Upload.of(tmp_path)
    (tmp_path / "MANIFEST").write_text(upload.manifest)
    ok = subprocess.run(["sha256sum", "--quiet", "--strict", "-c", "MANIFEST"], cwd=tmp_path, capture_output=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "compose.yml").write_text("changed\n")
    bad = subprocess.run(["sha256sum", "--quiet", "--strict", "-c", "MANIFEST"], cwd=tmp_path, capture_output=True)
    assert bad.returncode != 0
    assert sourcetree.Upload.of(tmp_path).revision != upload.revision


def test_archive_is_reproducible_and_keeps_the_executable_bit(tmp_path):
    make_app(tmp_path)
    first = sourcetree.Upload.of(tmp_path)
    (tmp_path / "apps/api/main.py").touch()  # new mtime, same content
    assert sourcetree.Upload.of(tmp_path).archive == first.archive
    with tarfile.open(fileobj=io.BytesIO(first.archive)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["apps/api/main.py", "apps/run.sh", "compose.yml"]
    assert members["apps/run.sh"].mode == 0o755 and members["apps/api/main.py"].mode == 0o644
    assert first.text("compose.yml") == "services: {}\n" and first.text("missing") is None


def test_unshippable_names_are_refused(tmp_path):
    (tmp_path / "back\\slash").write_text("x")
    with pytest.raises(sourcetree.SourceError, match="newline or backslash"):
        sourcetree.files(tmp_path)


def test_the_migration_scripts_checksum_follows_versions_only(tmp_path):
    make_app(tmp_path)
    (tmp_path / "apps/api/alembic/versions").mkdir(parents=True)
    (tmp_path / "apps/api/alembic/versions/0001_a.py").write_text("revision = '0001'\n")
    first = sourcetree.Upload.of(tmp_path)
    (tmp_path / "apps/api/main.py").write_text("print('changed code')\n")
    assert sourcetree.Upload.of(tmp_path).migrations == first.migrations != ""
    (tmp_path / "apps/api/alembic/versions/0002_b.py").write_text("revision = '0002'\n")
    assert sourcetree.Upload.of(tmp_path).migrations != first.migrations
