"""The guide's Production Setup and Deploying Updates, typed by hand: scripted literally,
as a person would paste them into a shell on the server (docker exec into a testbed
server container), with their waits done as a person would (watching until it is
true, checking once a second).

The app comes from a git repository on the server itself (a bare repository put there
by `publish`), as the guide's `git clone <your-repo> /opt/srq-hpn` and `git pull`
expect. The one deviation: the repository's Caddyfile gets `tls internal`, since no
ACME server is reachable here (the deploy uses the same setting).
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from tests.testbed.harness import DOMAIN, Server

REPOSITORY = "/srv/app.git"
COMPOSE = "docker compose --env-file .env.production"


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=ops", "-c", "user.email=ops@example.com", *args], cwd=cwd, check=True,
                   capture_output=True)


def publish(server: Server, app: Path, work: Path) -> None:
    """Commit `app` as the next commit of branch main in a bare repository on the server."""
    checkout = work / "checkout"
    if not checkout.exists():
        checkout.mkdir(parents=True)
        _git("init", "-q", "-b", "main", cwd=checkout)
    for entry in checkout.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(app, checkout, dirs_exist_ok=True)
    caddyfile = checkout / "caddy" / "Caddyfile"
    caddyfile.write_text(caddyfile.read_text().replace("{$DOMAIN} {\n", "{$DOMAIN} {\n\ttls internal\n", 1))
    _git("add", "-A", cwd=checkout)
    _git("commit", "-q", "--allow-empty", "-m", "release", cwd=checkout)
    bare = work / "app.git"
    shutil.rmtree(bare, ignore_errors=True)
    _git("clone", "-q", "--bare", str(checkout), str(bare), cwd=work)
    archive = work / "repo.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(bare, arcname="app.git")
    server.exec(f"rm -rf {REPOSITORY}")
    server.container.put_archive("/srv", archive.read_bytes())


def _run(server: Server, script: str, timeout: float = 900) -> None:
    server.exec(["bash", "-euo", "pipefail", "-c", script], timeout=timeout)


def _until(server: Server, condition: str, what: str, timeout: float = 300, poll: float = 1) -> None:
    """A person re-checking once a second (docker logs -f, curl again) until it is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.exec(["bash", "-c", condition], check=False, timeout=60)[0] == 0:
            return
        time.sleep(poll)
    raise RuntimeError(f"{what}: not true after {timeout:.0f}s on {server.name}")


def _timed(phases: dict, name: str, func) -> None:
    started = time.monotonic()
    func()
    phases[name] = time.monotonic() - started


def setup(server: Server, mirror: str, insecure: str) -> dict[str, float]:
    """The guide's Production Setup on a bare server; returns each step's seconds."""
    phases: dict[str, float] = {}
    _timed(phases, "install Docker (prerequisite)", lambda: _run(server, f"""
        mkdir -p /etc/docker
        echo '{{"registry-mirrors": ["{mirror}"], "insecure-registries": ["{insecure}"]}}' > /etc/docker/daemon.json
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
            docker.io docker-cli docker-compose docker-buildx git >/dev/null
    """))
    _timed(phases, "passwords and .env.production", lambda: _run(server, f"""
        mkdir -p /opt && cd /opt
        git clone -q {REPOSITORY} /opt/srq-hpn
        cd /opt/srq-hpn
        cat > .env.production <<EOF
DOMAIN={DOMAIN}
POSTGRES_DB=srq_hpn
POSTGRES_USER=srq_hpn
POSTGRES_PASSWORD=$(openssl rand -base64 32)
POSTGRES_APP_USER=srq_hpn_app
POSTGRES_APP_PASSWORD=$(openssl rand -base64 32)
NEXT_PUBLIC_API_BASE_URL=
EOF
        chmod 600 .env.production
    """))
    # `up -d db` pulls the image first; pulled apart here, the floor (speed_report) reads it.
    _timed(phases, "pull the database's image", lambda: _run(server, f"cd /opt/srq-hpn && {COMPOSE} pull -q db"))
    _timed(phases, "db up, initialised", lambda: (
        _run(server, f"cd /opt/srq-hpn && {COMPOSE} up -d db"),
        _until(server, "docker logs srq-hpn-db 2>&1 | grep -q \"Limited app user 'srq_hpn_app' created successfully\" "
               "&& docker exec srq-hpn-db pg_isready -q", "db initialised", poll=0.2),
    ))
    _timed(phases, "wait until healthy", lambda: _until(
        server, "[ \"$(docker inspect -f '{{.State.Health.Status}}' srq-hpn-db)\" = healthy ]", "db healthy"))
    _timed(phases, "build and start api", lambda: _run(server, f"cd /opt/srq-hpn && {COMPOSE} up -d --build api"))
    _timed(phases, "migrate", lambda: _run(server, f"cd /opt/srq-hpn && {COMPOSE} exec -T api alembic upgrade head"))
    _timed(phases, "start all", lambda: _run(server, f"cd /opt/srq-hpn && {COMPOSE} up -d"))
    _timed(phases, "verify through Caddy", lambda: verify(server))
    return phases


def verify(server: Server) -> None:
    """The guide's Step 4, re-run until every check answers as it says."""
    ca = "--cacert /tmp/caddy-ca.crt"
    _until(server, "docker exec srq-hpn-caddy cat /data/caddy/pki/authorities/local/root.crt > /tmp/caddy-ca.crt "
           f"&& curl -sfI {ca} --resolve {DOMAIN}:443:127.0.0.1 https://{DOMAIN} | head -1 | grep -q 200 "
           f"&& curl -sf {ca} --resolve {DOMAIN}:443:127.0.0.1 https://{DOMAIN}/api/health | grep -q '\"ok\":true' "
           f"&& curl -sf {ca} --resolve {DOMAIN}:443:127.0.0.1 https://{DOMAIN}/api/db-health | grep -q '\"db_ok\":true'",
           "the stack answering through Caddy")


def update(server: Server, backup: bool = False) -> dict[str, float]:
    """The guide's Deploying Updates (after `publish` of a new commit). Its step 3 is taken
    from "Running Migrations in Production" (`run --rm api alembic upgrade head`, "always
    BEFORE restarting the app"): `exec api` would run the old container, which has not
    the new migration files. With ``backup`` (a release with a migration), the guide's
    Golden Rule 3 first: "Backups before changes — especially before running migrations",
    with its "Backing Up the Database" command."""
    phases: dict[str, float] = {}
    _timed(phases, "git pull", lambda: _run(server, "cd /opt/srq-hpn && git pull -q origin main"))
    _timed(phases, "build", lambda: _run(server, f"cd /opt/srq-hpn && {COMPOSE} build"))
    if backup:
        _timed(phases, "back up (Golden Rule 3)", lambda: _run(
            server, "cd /opt/srq-hpn && docker exec srq-hpn-db pg_dump -U srq_hpn srq_hpn > backup_$(date +%Y%m%d_%H%M%S).sql"))
    _timed(phases, "migrate", lambda: _run(server, f"cd /opt/srq-hpn && {COMPOSE} run --rm -T api alembic upgrade head"))
    _timed(phases, "restart services", lambda: _run(server, f"cd /opt/srq-hpn && {COMPOSE} up -d"))
    _timed(phases, "verify through Caddy", lambda: verify(server))
    return phases


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="srq-hpn-guide-"))
