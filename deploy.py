"""The srq-hpn production deploy: the guide's Production Setup, steps 1 to 4, with the
automated backups and the monitoring its Production Checklist asks for.

    pyinfra inventory.py deploy.py

Each line below is one step, in order; each step lives in tasks/<concern>.py.
"""

from tasks import app, backups, database, docker, monitor, preflight, programs, release, secrets, source, stack, stack_files

# 1. Validate every setting, secret and the app's contract; stop, listing every problem, before any change.
deployment = preflight.check()
settings = deployment.settings

# 2. One run at a time on a server: take the deploy lock (released, with an audit line, at the end).
run = release.begin(deployment)

# 3. Docker Engine and Compose v2 (and the tools of the server programs, one apt run), daemon.json; on a fresh
#    install the pull of the images the app names starts at once; the server programs.
docker.install(settings, deployment.pulled_images)
programs.install(settings)

# 4. Database passwords: the operator's environment, else the server, else generated once.
env_sources = secrets.resolve(settings, deployment.on_server)

# 5. The app's repository in the app directory: an uploaded local checkout, or a git branch.
release_ref = source.install(deployment)

# 6. .env.production (0600), the Caddyfile and the deploy's compose layer over the app's compose file.
caddyfile_changed = stack_files.install(settings, env_sources, release_ref)

# 7. The release's images start building, and the missing ones pulling, while the database starts.
app.prepare_images(settings)

# 8. Backups: dumped and verified on a schedule (systemd timer), pruned, copied off the server when set.
backups.schedule(settings)

# 9. The database first: on its data volume, started alone, ready, with the limited app role.
database.start(settings)

# 10. The release's images, then alembic upgrade head with the superuser (a backup first), before the api changes.
app.build_and_migrate(settings)

# 11. Start everything (api and web swapped without downtime), then check it through Caddy.
stack.start_and_verify(settings, caddyfile_changed)

# 12. The monitor: the checks every minute, a webhook alerted when a problem starts and clears.
monitor.install(settings)

# 13. Record the release (older ones pruned), the audit line, and release the lock.
release.finish(run, deployment)
