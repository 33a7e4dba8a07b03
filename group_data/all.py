# Every setting of the deploy, with its default. Override per group in
# group_data/<group>.py, per host in the inventory, or once with
# `pyinfra ... --data name=value`. Settings under these prefixes that are not
# listed here are rejected by the preflight check (a typo fails loudly).
#
# Secrets are NOT settings: POSTGRES_PASSWORD and POSTGRES_APP_PASSWORD come from
# the operator's environment, else from the server, else they are generated once;
# any other secret the app's compose file needs, and RESTIC_PASSWORD (the off-server
# copy's), come from the operator's environment, else from the server.

# --- Site --------------------------------------------------------------------

# What this server is. "server" (the default): the whole stack on one server, as
# the guide runs it. Several servers (docs/topology.md): hosts of the inventory group
# `app` are app servers (group_data/app.py sets "app"): each runs the app's services
# from the same release, on an external database (postgres_host), its Caddy serving
# plain HTTP on srq_hpn_private_address only; hosts of the group `edge` (group_data/
# edge.py sets "edge") run Caddy alone, with the certificate, load-balancing across
# the app servers' private addresses with active health checks.
srq_hpn_role = "server"
srq_hpn_private_address = ""

# DOMAIN: the bare host name Caddy serves and gets a certificate for
# (e.g. "example.com"; no scheme, path or port). Required.
srq_hpn_domain = ""

# The app's repository on the server, as `git clone <repo> /opt/srq-hpn` puts it,
# with .env.production beside its compose.yml.
srq_hpn_app_dir = "/opt/srq-hpn"

# What the deploy adds and keeps on the server, outside the app's checkout: its
# compose layer, the templated Caddyfile, releases, the lock and the audit log.
srq_hpn_state_dir = "/var/lib/srq-hpn"

# Check the stack through Caddy at the end of every deploy (/, /api/health,
# /api/db-health, HTTP redirect), and how long to keep trying, in seconds.
srq_hpn_verify = True
srq_hpn_verify_timeout = 120

# --- Application source ------------------------------------------------------

# Where the app's repository comes from: "upload" sends a local checkout (its git
# files when it is a git work tree), "git" clones a repository on the server.
srq_hpn_app_source = "upload"

# upload: path of the local checkout, relative to this repository or absolute.
srq_hpn_app_local_path = "examples/srq-hpn-app"

# git: repository URL (https://..., an SSH URL such as git@github.com:org/app.git,
# or a path on the server; never with credentials in it), branch, and an optional
# local path of a deploy key (a read-only SSH key of that repository) to install on
# the server.
srq_hpn_app_git_repo = ""
srq_hpn_app_git_branch = "main"
srq_hpn_app_git_deploy_key = ""
# git over SSH: the git server's host key ("ssh-ed25519 AAAA...", as ssh-keyscan
# prints it; check it against the host's published fingerprints). Required for an
# SSH URL, unless the next setting accepts the key shown at the first connection.
srq_hpn_app_git_host_key = ""
srq_hpn_app_git_accept_new_host_key = False

# --- Application -------------------------------------------------------------

# Plain (not secret) variables for .env.production that the app's compose file or
# .env.production.example asks for, e.g. {"SITE_NAME": "Harbor"}. Secrets are
# never settings: declare their names below and export them when running pyinfra.
app_env = {}

# Names of the app's secret variables, e.g. ["SESSION_SECRET", "MAIL_TOKEN"]: the
# only variables read from your environment when you deploy (else kept from the
# server's .env.production). A variable the app's files ask for that is neither
# here nor in app_env stops the deploy, even if it is exported: the app's
# repository never chooses what your environment gives away. The deploy's own
# secrets (POSTGRES_PASSWORD, POSTGRES_APP_PASSWORD, RESTIC_PASSWORD,
# SRQ_HPN_MONITOR_WEBHOOK_URL) cannot be named here.
app_secrets = []

# NEXT_PUBLIC_API_BASE_URL: empty means the web calls /api/* relatively, via Caddy.
app_next_public_api_base_url = ""

# "template": the deploy writes the Caddyfile (TLS mode, ACME settings, security
# headers, retries that make updates seamless) and mounts it in place of the
# repository's caddy/Caddyfile. "repository": use the repository's own Caddyfile.
srq_hpn_caddyfile = "template"

# --- Releases ----------------------------------------------------------------

# Seconds a new api/web/worker container has to become ready before the update is
# abandoned (the running version keeps serving), and seconds an old one is given
# to finish its requests when it is replaced.
srq_hpn_ready_timeout = 120
srq_hpn_drain_timeout = 30

# Releases (image sets) kept for rollback; older images are removed.
srq_hpn_releases_kept = 5

# Seconds to wait for another deploy, rollback or restore on the same server to
# finish (0: refuse at once).
srq_hpn_lock_timeout = 0

# One-shot flag: break a lock left by a run that died (--data srq_hpn_break_lock=true).
srq_hpn_break_lock = False

# Rehearse every migration before it runs on production: the release's `alembic upgrade
# head` runs first on a copy of production (the backup taken before the migration,
# restored into a scratch database on the server, cut off from every network but the
# migration's own). If it fails there, nothing is migrated and nothing restarted. A
# release without a migration pays nothing for it. False: migrations run on production
# untested (the checklist warns).
srq_hpn_migration_rehearsal = True

# --- Database ----------------------------------------------------------------

# POSTGRES_DB, POSTGRES_USER (superuser, migrations) and POSTGRES_APP_USER
# (least-privilege role of the running api).
postgres_db = "srq_hpn"
postgres_user = "srq_hpn"
postgres_app_user = "srq_hpn_app"

# Publish 5432 on the server's 127.0.0.1 only, for SSH tunnels (never publicly).
# False: not published at all, whatever the app's compose file says.
postgres_publish_localhost = True

# Seconds to wait for the database to accept connections.
postgres_healthy_timeout = 180

# An external PostgreSQL (a managed service: RDS, Cloud SQL, ...) instead of the app's
# db service, which is then not started (the deploy's compose layer disables it; the
# repository is not edited). postgres_host: its host name or address ("": the app's own
# db service, the default). The app's compose file builds DATABASE_URL and
# DATABASE_URL_ADMIN from POSTGRES_HOST and POSTGRES_PORT (written to .env.production),
# e.g. `@${POSTGRES_HOST:-db}:${POSTGRES_PORT:-5432}/`; a compose file that names the
# host `db` is refused in this mode. postgres_user is then the provider's admin role
# (CREATEROLE and CREATEDB, no superuser needed) and POSTGRES_PASSWORD its password,
# from the operator's environment (never generated). The deploy makes sure of the
# app role and its grants with it, takes the scheduled logical backups with the db
# service's image as a client, and leaves point-in-time recovery to the provider
# (backup_wal_archive must be False).
# postgres_sslmode: libpq's sslmode for every connection (the app's services get
# PGSSLMODE and PGSSLROOTCERT): verify-full (the default: the CA below, and the host
# name in the certificate), verify-ca, require (encrypted, unverified) or disable.
# postgres_ssl_ca: the CA certificate (PEM) on this machine, required by verify-*.
postgres_host = ""
postgres_port = 5432
postgres_sslmode = "verify-full"
postgres_ssl_ca = ""

# --- Backups -----------------------------------------------------------------

# Where the server keeps its backups (a directory each: the pg_dump, the roles, a
# manifest; 0700 root, files 0600), and when the backup timer runs (a systemd
# OnCalendar value: "daily", "*-*-* 03:15:00", ...). A backup is also taken before
# every migration, and before every restore.
backup_dir = "/var/backups/srq-hpn"
backup_schedule = "daily"

# Retention, as restic's --keep-*: the newest backup of each of the last N days,
# weeks and months that have one. Only backups the deploy wrote are removed, and
# never the newest.
backup_keep_daily = 7
backup_keep_weekly = 4
backup_keep_monthly = 6

# Point-in-time recovery: the database archives every completed WAL segment into
# backup_dir/wal (within backup_wal_timeout seconds of a commit, even when little is
# written), and every scheduled backup run takes a base backup (pg_basebackup), kept
# backup_keep_daily days: restore.py and drill.py can then go to any second of that
# window. With the off-server copy on, the archive is copied there every 15 s.
# Turning it on or off restarts the database once (in a deploy, which says so first).
backup_wal_archive = True
backup_wal_timeout = 30

# Off-server copy with restic over SFTP, encrypted with RESTIC_PASSWORD (a secret
# from the operator's environment, required the first time). Empty: no copy.
# e.g. "sftp:backup@backup.example.com:/srv/restic/srq-hpn"
#  or "sftp://backup@backup.example.com:2222//srv/restic/srq-hpn"
backup_offsite_repository = ""
# Local path of the SSH key that logs in to that host (installed on the server, 0600).
backup_offsite_ssh_key = ""
# That host's key ("ssh-ed25519 AAAA...", or a known_hosts line), required with the
# copy: whoever answered the server's first connection would receive every backup.
# True in the next setting trusts the key shown at the first connection instead.
backup_offsite_host_key = ""
backup_offsite_accept_new_host_key = False
# How much of the copy's data `restic check --read-data-subset` reads before a
# drill from it ("10%", "1/5", "500M").
backup_offsite_check_subset = "10%"

# --- Restore drill and restore: one-shot, given with --data ----------------------

# drill.py: which backup (empty: the newest), and from where: "local" (the server's
# backup directory) or "offsite" (the restic copy).
drill_backup = ""
drill_from = "local"
# ... or a point in time (UTC, "2026-03-01T14:05:00Z") to recover from the WAL archive.
drill_time = ""

# restore.py: which backup, and the confirmation that it may replace the database:
# the domain or the database's name (rollback.py's restore_backup option asks for it too).
restore_backup = ""
restore_confirm = ""
# ... or, instead of a backup, a point in time (UTC, "2026-03-01T14:05:00Z") within the
# recoverable window (pyinfra inventory.py fact tasks.facts.Backups shows it), or
# "latest": everything the WAL archive holds.
restore_time = ""
# ... recovered from "local" (the server's WAL archive) or "offsite" (its restic copy:
# the way back after the server's disk was lost, on a freshly deployed server).
restore_from = "local"

# rollback.py: the release to go back to (empty: the one before the current one), and
# whether to restore the newest backup taken at that release's schema when the database
# was migrated since (destructive: needs restore_confirm).
rollback_to = ""
rollback_restore_backup = False

# --- Caddy -------------------------------------------------------------------

# TLS: "letsencrypt" (certificates from an ACME server: Let's Encrypt, or the one
# caddy_acme_ca names; DNS must point at the server) or "internal" (Caddy's own CA,
# for staging and tests).
caddy_tls = "letsencrypt"

# Optional ACME account email and ACME directory URL (e.g. Let's Encrypt staging, or
# an ACME server of your own).
caddy_acme_email = ""
caddy_acme_ca = ""

# A private ACME server (a company's own CA, with caddy_acme_ca): local path (relative
# to this repository, or absolute) of a PEM file with its root certificate(s). The
# deploy installs it on the server; Caddy trusts it for the ACME server's HTTPS
# (acme_ca_root), and the deploy's checks and the checklist verify the site's
# certificate against it. Empty: the public CAs.
caddy_acme_ca_root = ""

# --- Checklist and monitoring --------------------------------------------------

# Alerts: a systemd timer on the server runs the checks every `monitor_interval`
# seconds and POSTs a JSON alert to a webhook when a problem starts and when it
# clears. The webhook's URL may hold a token, so it is a secret, never a setting:
# export SRQ_HPN_MONITOR_WEBHOOK_URL when deploying (else the server's is kept).
# Without a URL there is no monitor; False removes it (and the URL) from the server.
monitor_enabled = True
monitor_interval = 60

# The checklist (pyinfra inventory.py checklist.py) warns when an image in use was
# built more than this many days ago, and when a password was last set more than
# this many days ago.
checklist_image_max_age_days = 30
checklist_password_max_age_days = 365

# --- Logs --------------------------------------------------------------------

# Log aggregation (optional): every container of the stack logs to the server's journal
# (Docker's journald log driver; `docker logs` and `docker compose logs` still work), and
# systemd-journal-upload sends the journal, the containers' lines with it, to a
# systemd-journal-remote collector at this URL: "http://host[:port]" (port 19532 by
# default). Plain HTTP, so the collector must be on a private network (a VPN, the
# provider's private network): the lines travel unencrypted and the collector takes
# uploads from whoever reaches it. Empty: the logs stay on the server (json-file).
# Turning it on or off recreates every container of the stack once.
log_shipping_url = ""

# --- Docker ------------------------------------------------------------------

# "official": Docker's apt repository (docker-ce, docker-compose-plugin, ...),
# with a signed-by keyring. "distro": the distribution's own packages
# (Debian 13: docker.io, docker-cli, docker-compose; Ubuntu: docker.io,
# docker-compose-v2), which also work offline behind a local mirror.
docker_install_method = "official"

# Base URL of Docker's apt repository ("<url>/debian" or "<url>/ubuntu" is used).
docker_official_repo_url = "https://download.docker.com/linux"

# Container log rotation (json-file driver), written to /etc/docker/daemon.json.
docker_log_max_size = "10m"
docker_log_max_file = 3

# Keep containers running while the Docker daemon restarts (daemon.json "live-restore"),
# so a daemon.json change causes no downtime.
docker_live_restore = True

# Optional registry mirrors (e.g. a pull-through cache of Docker Hub) and
# plain-HTTP registries for /etc/docker/daemon.json.
docker_registry_mirrors = []
docker_insecure_registries = []
