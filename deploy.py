"""The srq-hpn production deploy: the guide's Production Setup, steps 1 to 4, with the
automated backups, the monitoring and the (optional) log aggregation its Production
Checklist asks for; with several servers (docs/topology.md), the app servers' steps, then
the edge's.

    pyinfra inventory.py deploy.py

Each line below is one step, in order; each step lives in tasks/<concern>.py. The plan
(step 3) is made before anything changes: every later step does what it says. pyinfra runs
each step on every server before the next; the steps every server takes share their lines
here, so that the edge's own step (15) comes after the app servers' (6 to 14).
"""

from tasks import (app, backups, database, docker, edge, logs, monitor, plans, preflight, programs, release, secrets,
                   source, stack, stack_files)

# 1. Validate every setting, secret and the app's contract; stop, listing every problem, before any change.
deployment = preflight.check()
settings = deployment.settings

# 2. Database passwords: the operator's environment, else the server, else generated once (none on an edge).
env_sources = secrets.resolve(settings, deployment.on_server) if not settings.edge else None

# 3. The plan: the release resolved once (its files, env file, what Compose makes of them), and what this run
#    builds, migrates, swaps and reloads, each with its reason (an edge runs Caddy alone: no release).
plan = plans.make(deployment, env_sources) if not settings.edge else None

# 4. One run at a time on a server: take the deploy lock (released, with an audit line, at the end); in a group,
#    on each server one after the other, and the first refusal stops the run everywhere.
run = release.begin(deployment, plan=plan)

# 5. Docker Engine and Compose v2 (and the tools of the server programs, one apt run), daemon.json; on a fresh
#    install the pull of the images the app names (the edge: Caddy's) starts at once; the server programs.
docker.install(settings, deployment.pulled_images)
programs.install(settings, deployment.backups_on)

if not settings.edge:  # the whole stack on this server, or an app server of a group
    # 6. A standby of each running upstream the release swaps (api, web): its running version, getting ready while
    #    the release builds, to serve while the new one boots under the service's own name.
    stack.standby(plan)

    # 7. The app's repository in the app directory: an uploaded local checkout, or a git branch.
    source.install(deployment)

    # 8. On a first deploy, the rest of the plan, once Docker runs and the release's files are in place.
    plans.settle(deployment, env_sources, plan)

    # 9. .env.production (0600), the Caddyfile and the deploy's compose layer over the app's compose file.
    stack_files.install(settings, plan, env_sources)

    # 10. The release's images start building, and the missing ones pulling, while the database starts.
    app.prepare_images(plan)

    # 11. Backups: dumped and verified on a schedule (systemd timer), pruned, copied off the server when set (in a
    #     group, on the first app server).
    backups.schedule(settings, deployment.backups_on)

    # 12. The database first: on its data volume, started alone, ready, with the limited app role (an external
    #     database: it answers, and has the role).
    database.start(settings, plan)

    # 13. The release's images, then alembic upgrade head with the superuser (a backup first), before the api
    #     changes (in a group, once, on the first app server, before any server is swapped).
    app.build_and_migrate(settings, plan)

    # 14. Start everything (api and web swapped without downtime; in a group, one server after the other), then
    #     check it through Caddy.
    stack.start_and_verify(settings, plan)

# 15. The edge of a group: once every app server is done, Caddy alone with the certificate, load-balancing across
#     them with active health checks; started, or its Caddyfile reloaded in place; the site checked through it.
edge.serve(deployment)

# 16. The monitor: the checks every minute, a webhook alerted when a problem starts and clears.
monitor.install(settings)

# 17. Log shipping (optional): the journal, where the containers log, sent to a collector by systemd-journal-upload.
logs.ship(settings)

# 18. Record the release (older ones pruned), the audit line, and release the lock.
release.finish(run, deployment)
