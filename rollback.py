"""Roll back to the previous release (or a named one), without a rebuild and without
downtime:

    pyinfra inventory.py rollback.py                               # the release before the current one
    pyinfra inventory.py rollback.py --data rollback_to=3f2a1b9c   # a release kept on the server

When the database was migrated since that release, the rollback refuses, unless told to
put the database back as it was too (destructive: a safety backup is taken first):

    pyinfra inventory.py rollback.py --data rollback_restore_backup=true --data restore_confirm=<domain>

Each line below is one step; each step lives in tasks/<concern>.py.
"""

from tasks import plans, preflight, programs, recovery, release, rollback, stack, stack_files

# 1. Validate the settings; the app's local checkout is not needed (nothing is shipped).
deployment = preflight.check(ship=False)
settings = deployment.settings

# 2. The release to go back to: kept on the server, images present, and fitting the database's
#    schema (or the backup taken at that schema, to restore first).
target, backup = rollback.choose(deployment)

# 3. The plan: that release's layer over the server's own files, and what it swaps.
plan = plans.for_stack(settings, target, backup)

# 4. One run at a time on a server: take the deploy lock.
run = release.begin(deployment, "rollback", plan=plan)

# 5. The deploy's server programs, with this run's settings (timeouts); a standby of each upstream swapped.
programs.install(settings, deployment.backups_on)
stack.standby(plan)

# 6. With a backup to restore: the database replaced by it (maintenance page, safety backup first).
if backup:
    recovery.replace_database(settings, backup["name"])

# 7. The deploy's compose layer names that release's images.
stack_files.layer(settings, plan)

# 8. Swap api, web and the app's other services to them (no downtime), then check through Caddy;
#    after a restore, the app role made sure and the app started again behind the maintenance page.
if backup:
    recovery.bring_back(settings, plan)
else:
    stack.start_and_verify(settings, plan)

# 9. Record it as the current release, the audit line, and release the lock.
release.finish(run, deployment)
