"""Roll back to the previous release (or a named one), without a rebuild and without
downtime:

    pyinfra inventory.py rollback.py                          # the release before the current one
    pyinfra inventory.py rollback.py --data rollback_to=3f2a1b9c   # a release kept on the server

Each line below is one step; each step lives in tasks/<concern>.py.
"""

from pyinfra import host

from tasks import preflight, programs, release, rollback, stack, stack_files

# 1. Validate the settings; the app's local checkout is not needed (nothing is shipped).
deployment = preflight.check(ship=False)
settings = deployment.settings

# 2. One run at a time on a server: take the deploy lock.
run = release.begin(deployment, "rollback")

# 3. The deploy's server programs, with this run's settings (timeouts).
programs.install(settings)

# 4. The release to go back to: kept on the server, images present, and fitting the database's schema.
target = rollback.choose(deployment, host.data.get("rollback_to"))

# 5. The deploy's compose layer names that release's images.
stack_files.layer(settings, target)

# 6. Swap api, web and the app's other services to them (no downtime), then check through Caddy.
stack.start_and_verify(settings, caddyfile_changed=lambda: False)

# 7. Record it as the current release, the audit line, and release the lock.
release.finish(run, deployment)
