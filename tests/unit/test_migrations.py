"""The release's migration heads, read from its scripts without running the app."""

import pytest

from tasks import sourcetree
from tasks.migrations import Script, UnreadableMigrations, heads, read_script, release_heads, versions_dirs
from tests.testbed import harness


def test_a_script_written_by_alembic():
    text = ('"""x"""\nfrom typing import Union\nrevision: str = "0002"\n'
            'down_revision: Union[str, None] = "0001"\nbranch_labels = None\n')
    assert read_script(text) == Script("0002", ("0001",))
    assert read_script('revision = "a"\ndown_revision = None\n') == Script("a", ())
    assert read_script('revision = "m"\ndown_revision = ("a", "b")\n') == Script("m", ("a", "b"))
    assert read_script("import os\n") is None  # not a migration (a helper module)


def test_a_computed_revision_cannot_be_read():
    with pytest.raises(UnreadableMigrations, match="computed"):
        read_script('import uuid\nrevision = uuid.uuid4().hex\ndown_revision = None\n', "x.py")


def test_heads_are_the_revisions_nothing_revises():
    chain = [Script("0001", ()), Script("0002", ("0001",)), Script("0003", ("0002",))]
    assert heads(chain) == ["0003"]
    branched = chain + [Script("0003b", ("0002",))]
    assert heads(branched) == ["0003", "0003b"]
    assert heads(branched + [Script("merge", ("0003", "0003b"))]) == ["merge"]
    assert heads([]) == []


def test_where_alembic_ini_keeps_the_scripts():
    assert versions_dirs("[alembic]\nscript_location = %(here)s/alembic\n", "apps/api") == ["apps/api/alembic/versions"]
    assert versions_dirs("[alembic]\nscript_location = migrations\n", "apps/api") == ["apps/api/migrations/versions"]
    assert versions_dirs("[alembic]\nscript_location = m\nversion_locations = %(here)s/a %(here)s/b\n", "api") == [
        "api/a", "api/b"]
    with pytest.raises(UnreadableMigrations):
        versions_dirs("[alembic]\n", "apps/api")


@pytest.mark.parametrize("app, expected", [(harness.SAMPLE_APP, ["0002"]), (harness.VARIANT_APP, ["3f2a1b9c0d11"])])
def test_the_sample_apps_heads(app, expected):
    upload = sourcetree.Upload.of(app)
    assert release_heads(upload.paths, upload.text, "apps/api") == expected
