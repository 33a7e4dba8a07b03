"""The restore: replaces the live database with a backup. Destructive, so guarded.

    pyinfra inventory.py restore.py --data restore_backup=NAME --data restore_confirm=<domain or db name>
    pyinfra inventory.py restore.py --data restore_time=2026-03-01T14:05:00Z --data restore_confirm=...

Each line below is one step, in order; the steps live in tasks/.
"""

from tasks import plans, preflight, programs, recovery, release

# 1. Validate the settings, the backup's name and the confirmation; refuse before any change.
deployment = preflight.check_command("restore")
settings = deployment.settings

# 2. The plan: the running release started again on the restored database (migrated if the backup is behind).
plan = plans.for_restore(settings)

# 3. One run at a time on a server: take the deploy lock (released, with an audit line, at the end).
run = release.begin(deployment, action="restore", plan=plan,
                    detail={"backup": settings.restore_backup} if settings.restore_backup else
                    {"point_in_time": settings.restore_time, "from": settings.restore_from})

# 4. The server programs, and what they read (deploy.env), as these settings say.
programs.install(settings, deployment.backups_on)

# 5. The backup (or the database at restore_time, recovered from the WAL archive and written as a backup)
#    restored beside the live database; Caddy's maintenance page on, the app stopped,
#    a safety backup of the live database, then the two swapped. The Docker volume is kept.
recovery.replace_database(settings, plan=plan)

# 6. The app role's grants and current password, migrations if the backup is behind, the app
#    started again, the maintenance page off, and the stack checked through Caddy.
recovery.bring_back(settings, plan)

# 7. The audit line, and release the lock.
release.end(run)
