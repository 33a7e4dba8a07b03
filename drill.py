"""The restore drill: proves that a backup restores, without touching the live database.

    pyinfra inventory.py drill.py                                # the newest backup
    pyinfra inventory.py drill.py --data drill_backup=NAME       # a named one
    pyinfra inventory.py drill.py --data drill_from=offsite      # from the off-server copy
    pyinfra inventory.py drill.py --data drill_time=2026-03-01T14:05:00Z   # a point in time

Each line below is one step, in order; the steps live in tasks/.
"""

from tasks import preflight, programs, recovery

# 1. Validate the settings and the drill's own (which backup, from where); stop before any change.
deployment = preflight.check_command("drill")

# 2. The server programs, and what they read (deploy.env), as these settings say.
programs.install(deployment.settings, deployment.backups_on)

# 3. Restore the backup into a scratch database container, compare it with its manifest
#    (revision, rows of every table, the app role's grants), record the result, print a table.
recovery.drill(deployment.settings)
