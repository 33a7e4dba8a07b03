"""The backup programs' own logic, run for real with bash, GNU date and jq against
backup directories made here: retention over backups dated in the past, the row
counts read from a dump, and the check of a backup's files against its manifest."""

import json
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from tasks import render

PROGRAMS = render.SERVER_PROGRAMS
needs_tools = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("jq") and shutil.which("flock")),
                                 reason="needs bash, jq and flock")


def run(script: str, tmp_path, stdin: str = "", **settings) -> subprocess.CompletedProcess:
    """Run bash with lib.sh and backup.sh sourced, against a deploy.env of these settings."""
    config = tmp_path / "deploy.env"
    values = {"STATE_DIR": tmp_path / "state", "BACKUP_DIR": tmp_path / "backups", **settings}
    config.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return subprocess.run(
        ["bash", "-c", f'. "{PROGRAMS}/lib.sh"; . "{PROGRAMS}/backup.sh"; {script}'],
        input=stdin, capture_output=True, text=True, env={"SRQ_HPN_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
    )


def backup(directory, name: str, manifest: dict | None = None) -> None:
    path = directory / name
    path.mkdir(parents=True)
    (path / "db.dump").write_bytes(b"PGDMP dump")
    (path / "manifest.json").write_text(json.dumps(manifest or {"name": name}))


# Backups of a deploy that ran for months (names are their UTC times), the newest first.
PAST = [
    "srq-hpn-20250310T140000Z-pre-migration-0002-to-0003",
    "srq-hpn-20250310T020000Z",
    "srq-hpn-20250309T020000Z",
    "srq-hpn-20250308T020000Z",
    "srq-hpn-20250307T020000Z",
    "srq-hpn-20250301T020000Z",
    "srq-hpn-20250220T020000Z",
    "srq-hpn-20250210T020000Z",
    "srq-hpn-20250115T020000Z",
    "srq-hpn-20241201T020000Z",
]


@needs_tools
def test_retention_keeps_exactly_the_newest_of_each_day_week_and_month(tmp_path):
    backups = tmp_path / "backups"
    for name in PAST:
        backup(backups, name)
    # Not the deploy's: a file of the operator's, a directory without a backup's name,
    # and one with a backup's name but no manifest (not complete: never touched).
    (backups / "notes.txt").write_text("mine")
    (backups / "srq-hpn-manual").mkdir()
    (backups / "srq-hpn-20240101T000000Z").mkdir()
    # Left by a run that died before renaming its work: removed.
    (backups / ".incomplete-srq-hpn-20250311T000000Z").mkdir()

    done = run('prune "$BACKUP_DIR" 3 2 2', tmp_path)

    assert done.returncode == 0, done.stderr
    # 3 daily: 03-10 (its newest: the pre-migration backup), 03-09, 03-08; 2 weekly: the
    # newest of ISO week 11 (Monday 03-10) and of week 10 (Sunday 03-09); 2 monthly:
    # the newest of 2025-03 (03-10) and of 2025-02 (02-20).
    assert sorted(p.name for p in backups.iterdir()) == sorted([
        "notes.txt", "srq-hpn-manual", "srq-hpn-20240101T000000Z",
        "srq-hpn-20250310T140000Z-pre-migration-0002-to-0003",
        "srq-hpn-20250309T020000Z",
        "srq-hpn-20250308T020000Z",
        "srq-hpn-20250220T020000Z",
    ])
    assert "removed srq-hpn-20250310T020000Z (retention: 3 daily, 2 weekly, 2 monthly)" in done.stdout
    assert "removed .incomplete-srq-hpn-20250311T000000Z" in done.stdout


@needs_tools
def test_retention_plan_says_why_each_backup_is_kept(tmp_path):
    for name in PAST:
        backup(tmp_path / "backups", name)
    done = run('retention_plan "$BACKUP_DIR" 3 2 2', tmp_path)
    assert done.stdout.splitlines() == [
        "keep srq-hpn-20250310T140000Z-pre-migration-0002-to-0003 newest,daily,weekly,monthly",
        "remove srq-hpn-20250310T020000Z",
        "keep srq-hpn-20250309T020000Z daily,weekly",
        "keep srq-hpn-20250308T020000Z daily",
        "remove srq-hpn-20250307T020000Z",
        "remove srq-hpn-20250301T020000Z",
        "keep srq-hpn-20250220T020000Z monthly",
        "remove srq-hpn-20250210T020000Z",
        "remove srq-hpn-20250115T020000Z",
        "remove srq-hpn-20241201T020000Z",
    ]


@needs_tools
def test_retention_never_removes_the_newest_nor_a_recent_labelled_backup(tmp_path):
    backups = tmp_path / "backups"
    now = datetime.now(timezone.utc)
    stamp = lambda t: t.strftime("%Y%m%dT%H%M%SZ")  # noqa: E731
    names = [f"srq-hpn-{stamp(now - timedelta(hours=2))}",
             f"srq-hpn-{stamp(now - timedelta(hours=1))}-pre-migration-0003-to-0004",
             f"srq-hpn-{stamp(now - timedelta(minutes=30))}"]
    for name in names:
        backup(backups, name)
    done = run('prune "$BACKUP_DIR" 1 1 1', tmp_path)
    assert done.returncode == 0, done.stderr
    remaining = sorted(p.name for p in backups.iterdir())
    # The newest (daily/weekly/monthly all pick it) and the labelled one of the last
    # keep_daily days; the older scheduled backup of the same day goes.
    assert remaining == sorted(names[1:]), done.stdout


DATA_ONLY = """--
-- PostgreSQL database dump
--
\\restrict AbCdEf
SET statement_timeout = 0;

COPY public.alembic_version (version_num) FROM stdin;
0002
\\.

COPY public.events (id, title, starts_at, created_at) FROM stdin;
1\tfirst\t2026-01-01 10:00:00+00\t2026-01-01 09:00:00+00
2\ta line\\nwith an escaped newline\t2026-01-02 10:00:00+00\t2026-01-01 09:00:00+00
\\.

COPY public."Odd Name" (id) FROM stdin;
\\.

SELECT pg_catalog.setval('public.events_id_seq', 2, true);
\\unrestrict AbCdEf
"""


@needs_tools
def test_row_counts_and_revision_are_read_from_the_dump_itself(tmp_path):
    done = run("dump_contents | contents_json", tmp_path, stdin=DATA_ONLY)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "tables": {"public.alembic_version": 1, "public.events": 2, 'public."Odd Name"': 0},
        "alembic_revision": ["0002"],
    }


@needs_tools
def test_a_dump_cut_inside_its_data_is_an_error(tmp_path):
    cut = DATA_ONLY[: DATA_ONLY.index("2\ta line")]
    assert run("dump_contents", tmp_path, stdin=cut).returncode != 0


@needs_tools
def test_files_are_checked_against_the_manifest(tmp_path):
    directory = tmp_path / "backups" / "srq-hpn-20250101T000000Z"
    directory.mkdir(parents=True)
    (directory / "db.dump").write_bytes(b"0123456789")
    (directory / "globals.sql").write_text("CREATE ROLE x;\n")
    made = run(f'file_json "{directory}" db.dump globals.sql', tmp_path)
    (directory / "manifest.json").write_text(json.dumps({"files": json.loads(made.stdout)}))

    def problems():
        return run(f'backup_file_problems "{directory}"', tmp_path).stdout.splitlines()

    assert problems() == []
    (directory / "db.dump").write_bytes(b"01234")
    assert problems() == ["db.dump is truncated: 5 bytes, the manifest says 10"]
    (directory / "db.dump").write_bytes(b"0123456780")
    assert problems() == ["db.dump is corrupted: its sha256 differs from the manifest's"]
    (directory / "globals.sql").unlink()
    assert problems()[1:] == ["globals.sql is missing"]
    (directory / "manifest.json").unlink()
    assert problems() == ["manifest.json is missing or unreadable"]


@needs_tools
def test_backup_names(tmp_path):
    done = run('backup_name pre-migration-0001-to-0002; is_backup_name srq-hpn-20250101T000000Z && echo ok; '
               'is_backup_name "srq-hpn-20250101T000000Z-../x" || echo refused; '
               'backup_epoch srq-hpn-20250101T000100Z-label', tmp_path)
    name, ok, refused, epoch = done.stdout.split()
    assert name.startswith("srq-hpn-") and name.endswith("Z-pre-migration-0001-to-0002")
    assert (ok, refused) == ("ok", "refused")
    assert int(epoch) == int(datetime(2025, 1, 1, 0, 1, tzinfo=timezone.utc).timestamp())


def test_every_server_program_is_valid_bash():
    for path in sorted(PROGRAMS.iterdir()):
        if path.is_file():
            done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
            assert done.returncode == 0, f"{path.name}: {done.stderr}"
