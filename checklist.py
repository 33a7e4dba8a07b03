"""The guide's Production Checklist, checked on a live server (read-only).

    pyinfra inventory.py checklist.py -y

One line per item: pass, warn, fail or cannot-check, with the evidence (never a
secret). The run fails when any item fails. The same as data:
`pyinfra inventory.py fact tasks.facts.Checklist --json`.
"""

from tasks import checklist, preflight

# 1. Validate the settings (the deploy's own rules); nothing is asked of the server before.
settings = preflight.settings_only()

# 2. Check every item on the server, print one line each, and fail on any fail.
checklist.check(settings)
