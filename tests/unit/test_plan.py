"""The plan's pure parts: the images' tags follow their build contexts, and the plan in words."""

import shutil
from dataclasses import replace

from tasks import appspec
from tasks.plan import Migration, Plan, Release, Rollout
from tasks.resolve import build_ids
from tasks.sourcetree import Upload
from tests.testbed import harness


def ids(root):
    upload = Upload.of(root)
    documents = [appspec.compose_document(upload.text(name), name)
                 for name in appspec.compose_file_names(list(upload.paths))]
    checksums = dict(reversed(line.split("  ", 1)) for line in upload.manifest.splitlines())
    return build_ids(documents, checksums)


def test_a_service_whose_files_did_not_change_keeps_its_image(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(harness.SAMPLE_APP, app)
    before = ids(app)
    assert set(before) == {"api", "web"} and all(len(tag) == 12 for tag in before.values())
    (app / "apps/api/app/main.py").write_text((app / "apps/api/app/main.py").read_text() + "\n# changed\n")
    after = ids(app)
    assert after["web"] == before["web"] and after["api"] != before["api"]
    (app / "README.md").write_text("outside every build context\n")
    assert ids(app) == after


def test_the_plan_in_words():
    release = Release("3f2a1b9c0d11", "3f2a1b9c0d11" * 5, "upload", None, ("compose.yml",), {}, "", ("0003",))
    plan = Plan(release=release, env=None, env_text="", env_preview="", known=True)
    assert plan.steps() == ["nothing to change"]
    plan = replace(plan, build=["api"], migration=Migration(("0002",), ("0003",), True), goes_live=True,
                   rollout=Rollout(swap=("api",), why={"api": "new image 9c1e"}), reload_caddy=True,
                   rotated=["POSTGRES_APP_PASSWORD"])
    assert plan.steps() == [
        "rotate POSTGRES_APP_PASSWORD",
        "build api (release 3f2a1b9c0d11)",
        "migrate 0002 -> 0003, after a backup pre-migration-0002-to-0003",
        "swap api without downtime (new image 9c1e)",
        "reload Caddy in place (its Caddyfile changed)",
        "release 3f2a1b9c0d11 goes live",
    ]
    assert "********" in repr(plan)
    nudge = replace(plan, caddy_reasons=["it has no certificate for example.com: it asks Let's Encrypt again now"])
    assert "reload Caddy in place (it has no certificate for example.com: it asks Let's Encrypt again now)" \
        in nudge.steps()
