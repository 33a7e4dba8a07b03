"""The srq-hpn production deploy: the guide's Production Setup, steps 1 to 4.

    pyinfra inventory.py deploy.py

Each line below is one step, in order; each step lives in tasks/<concern>.py.
"""

from tasks import app, database, docker, preflight, secrets, source, stack, stack_files

# 1. Validate every setting and secret; stop, listing every problem, before any change.
settings = preflight.check()

# 2. Docker Engine and Compose v2, daemon.json with log rotation.
docker.install(settings)

# 3. Database passwords: the operator's environment, else the server, else generated once.
passwords = secrets.resolve(settings)

# 4. .env.production (0600), caddy/Caddyfile, compose.yml, db/init/01-create-app-user.sh.
caddyfile_changed = stack_files.install(settings, passwords)

# 5. The app's source: an uploaded local checkout, or a git branch.
source_revision = source.install(settings)

# 6. The database first: start it, wait until healthy, ensure the limited app role.
database.start(settings)

# 7. Build the api and web images, then alembic upgrade head with the superuser.
app.build_and_migrate(settings, source_revision)

# 8. Start everything, then check /, /api/health and /api/db-health through Caddy.
stack.start_and_verify(settings, caddyfile_changed)
