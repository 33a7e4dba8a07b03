"""Scenario 41: the plan tells the truth. For each kind of change, `--dry` (without `-y`)
lists exactly the operations that the real run then reports as changed, no more and no
fewer, and says why; the real run changes nothing it did not announce.

1. nothing changed; 2. the api's code (its image built, api alone swapped); 3. the api's
code and a migration (also the backup and the migration, from -> to); 4. a Caddyfile
setting (a reload only); 5. the app role's password rotated (the services that use it);
6. a daemon.json setting; 7. in git mode, a new commit on the branch."""

from __future__ import annotations

import subprocess
import tarfile

from tasks.settings import generate_password
from tests.integration.helpers import ADD_NOTE_MIGRATION, app_copy, deploy, plan_then_run, planned, start_times
from tests.testbed import harness


def named(changes, *words: str) -> list[str]:
    return [name for name in changes if all(word in name for word in words)]


def test_nothing_changed(deployed, server, testbed):
    changes, lines = planned(server, testbed.settings())
    assert changes == set() and lines == ["nothing to change"]
    before = start_times(server)
    assert deploy(server, testbed.settings()).changed_operations() == []
    assert start_times(server) == before


def test_the_apis_code_changed_then_a_migration(deployed, server, testbed, tmp_path):
    app = app_copy(harness.SAMPLE_APP, tmp_path / "app")
    main = app / "apps/api/app/main.py"
    main.write_text(main.read_text() + "\n# the api's code changed\n")
    settings = testbed.settings(srq_hpn_app_local_path=str(app))
    web_before = start_times(server)["srq-hpn-web"]

    lines, run = plan_then_run(server, settings)

    assert any(line.startswith("build api (release ") for line in lines), lines
    assert any(line.startswith("swap api without downtime") for line in lines), lines
    assert not any("web" in line for line in lines), lines  # web's files did not change: its image stays
    assert named(run.changed_operations(), "images are built", "build api")
    assert start_times(server)["srq-hpn-web"] == web_before

    (app / "apps/api/alembic/versions/0003_add_note.py").write_text(ADD_NOTE_MIGRATION)
    main.write_text(main.read_text() + "# and again\n")
    lines, run = plan_then_run(server, settings)

    assert "migrate 0002 -> 0003, rehearsed on a copy first, after a backup pre-migration-0002-to-0003" in lines, lines
    assert named(run.changed_operations(), "newest migration", "migrate 0002 -> 0003")
    _, revision = server.exec("docker exec srq-hpn-db psql -U srq_hpn -d srq_hpn -tA -c 'SELECT version_num FROM alembic_version'")
    assert revision.strip() == "0003"
    _, labelled = server.exec("ls /var/backups/srq-hpn")
    assert "pre-migration-0002-to-0003" in labelled

    # Back to the shared app (its schema stays at 0003: a newer schema is additive here).
    server.exec("docker exec srq-hpn-db psql -U srq_hpn -d srq_hpn -c "
                "\"ALTER TABLE events DROP COLUMN note; UPDATE alembic_version SET version_num = '0002'\"")
    deploy(server, testbed.settings())


def test_a_caddyfile_setting_reloads_caddy_only(deployed, server, testbed):
    before = start_times(server)
    lines, run = plan_then_run(server, testbed.settings(caddy_acme_email="ops@srq-hpn.test"))
    assert lines == ["reload Caddy in place (its Caddyfile changed)"], lines
    assert start_times(server) == before
    plan_then_run(server, testbed.settings())


def test_a_rotated_app_password_recreates_the_services_that_use_it(deployed, server, testbed):
    before = start_times(server)
    env = {"POSTGRES_APP_PASSWORD": generate_password()}
    lines, run = plan_then_run(server, testbed.settings(), env=env)
    assert "rotate POSTGRES_APP_PASSWORD" in lines, lines
    assert any("POSTGRES_APP_PASSWORD changed" in line and "api" in line for line in lines), lines
    after = start_times(server)
    assert after["srq-hpn-api"] != before["srq-hpn-api"]
    assert after["srq-hpn-web"] == before["srq-hpn-web"] and after["srq-hpn-caddy"] == before["srq-hpn-caddy"]
    assert named(run.changed_operations(), "limited role", "POSTGRES_APP_PASSWORD rotated")


def test_a_daemon_json_setting(deployed, server, testbed):
    lines, run = plan_then_run(server, testbed.settings(docker_log_max_size="20m"))
    assert sorted(run.changed_operations()) == [
        "Install Docker Engine and Compose v2 | Ensure /etc/docker/daemon.json sets log rotation and registries",
        "Install Docker Engine and Compose v2 | Ensure Docker is started and enabled at boot",
    ]
    plan_then_run(server, testbed.settings())


def test_a_new_commit_on_the_branch_in_git_mode(deployed, server, testbed, tmp_path):
    work = app_copy(harness.SAMPLE_APP, tmp_path / "work")

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=work, check=True,
                       capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    bare = tmp_path / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)

    def publish():
        archive = tmp_path / "repo.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(bare, arcname="plan-app.git")
        server.exec("rm -rf /srv/plan-app.git")
        server.container.put_archive("/srv", archive.read_bytes())

    publish()
    settings = testbed.settings(srq_hpn_app_source="git", srq_hpn_app_git_repo="/srv/plan-app.git",
                                srq_hpn_app_git_branch="main")
    deploy(server, settings)
    assert planned(server, settings)[0] == set()

    main = work / "apps/web/server.js"
    main.write_text(main.read_text() + "\n// a new commit\n")
    git("commit", "-q", "-am", "second")
    subprocess.run(["git", "push", "-q", str(bare), "main"], cwd=work, check=True)
    publish()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout.strip()

    lines, run = plan_then_run(server, settings)

    assert any(line == f"build web (release {commit[:12]})" for line in lines), lines
    assert any(line.startswith("swap web without downtime") for line in lines), lines
    assert named(run.changed_operations(), f"is {settings['srq_hpn_app_git_repo']} at the newest main")
    _, checked_out = server.exec("git -C /opt/srq-hpn rev-parse HEAD")
    assert checked_out.strip() == commit

    deploy(server, testbed.settings())
