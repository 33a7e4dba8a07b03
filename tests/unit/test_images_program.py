"""srq-hpn-images, run for real with bash and a stand-in `docker` on PATH: the build and
the pull go on in the background, and the wait reports their outcome, a failure too."""

import os
import subprocess

from tasks import render

PROGRAM = render.SERVER_PROGRAMS / "srq-hpn-images"


def run(tmp_path, *args, build_exit=0, pull_exit=0, timeout=30, early_pull_pid=None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    if not docker.exists():  # once per test: the background work runs it after `start` returns
        docker.write_text(f"""#!/bin/sh
case "$*" in
  *" build "*) date +%s.%N > "{tmp_path}/build-started"; echo "#25 ERROR: the build's own words"; exit {build_exit} ;;
  *" pull "*) exit {pull_exit} ;;
esac
""")
        docker.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    config = tmp_path / "deploy.env"
    config.write_text(f"APP_DIR={tmp_path}\nSTATE_DIR={state}\nENV_FILE=.env.production\n"
                      f"EARLY_PULL_PID={early_pull_pid or tmp_path / 'no-early-pull.pid'}\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SRQ_HPN_CONFIG": str(config)}
    return subprocess.run(["bash", str(PROGRAM), *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_a_good_build_and_pull_are_reported_ready(tmp_path):
    assert run(tmp_path, "start", "r1", "api", "web").returncode == 0
    done = run(tmp_path, "wait", "r1")
    assert done.returncode == 0, done.stderr
    assert "the images of release r1 are ready" in done.stdout


def test_a_failed_build_is_reported_with_its_own_words(tmp_path):
    assert run(tmp_path, "start", "r2", "api", build_exit=1).returncode == 0
    done = run(tmp_path, "wait", "r2")
    assert done.returncode == 1
    assert "the build of the release's images failed" in done.stderr
    assert "#25 ERROR: the build's own words" in done.stderr
    assert "hint: the lines above are the build's own" in done.stderr


def test_a_failed_pull_is_reported(tmp_path):
    assert run(tmp_path, "start", "r3", build_exit=0, pull_exit=1).returncode == 0
    done = run(tmp_path, "wait", "r3")
    assert done.returncode == 1 and "pulling the images of the app's compose file failed" in done.stderr


def test_the_builds_wait_for_the_early_pull_of_the_database_image(tmp_path):
    pid_file = tmp_path / "early-pull.pid"
    pulling = subprocess.Popen(["sh", "-c", "sleep 30; echo docker pull -q postgres:16"])
    try:
        pid_file.write_text(f"{pulling.pid}\n")
        assert run(tmp_path, "start", "r4", "api", early_pull_pid=pid_file).returncode == 0
        subprocess.run(["sleep", "1"])
        assert not (tmp_path / "build-started").exists(), "the build began while the database image was pulling"
        pid_file.unlink()  # the early pull removes it once the database image is there
        done = run(tmp_path, "wait", "r4", early_pull_pid=pid_file)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "build-started").exists()
    finally:
        pulling.kill()


def test_a_stale_early_pull_pid_does_not_hold_the_builds(tmp_path):
    pid_file = tmp_path / "early-pull.pid"
    gone = subprocess.Popen(["true"])
    gone.wait()
    other = subprocess.Popen(["sleep", "30"])  # a process that is not the pull, under a reused pid
    try:
        for number, pid in ((5, gone.pid), (6, other.pid)):
            pid_file.write_text(f"{pid}\n")
            assert run(tmp_path, "start", f"r{number}", "api", early_pull_pid=pid_file).returncode == 0
            done = run(tmp_path, "wait", f"r{number}", early_pull_pid=pid_file, timeout=10)
            assert done.returncode == 0, done.stderr
    finally:
        other.kill()
