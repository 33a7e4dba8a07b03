# Every setting of the deploy, with its default. Override per group in
# group_data/<group>.py, per host in the inventory, or once with
# `pyinfra ... --data name=value`. Settings under these prefixes that are not
# listed here are rejected by the preflight check (a typo fails loudly).
#
# Secrets are NOT settings: POSTGRES_PASSWORD and POSTGRES_APP_PASSWORD come from
# the operator's environment, else from the server, else they are generated once.

# --- Site --------------------------------------------------------------------

# DOMAIN: the bare host name Caddy serves and gets a certificate for
# (e.g. "example.com"; no scheme, path or port). Required.
srq_hpn_domain = ""

# Directory on the server holding compose.yml, .env.production, caddy/, db/ and src/.
srq_hpn_app_dir = "/opt/srq-hpn"

# Check the stack through Caddy at the end of every deploy (/, /api/health,
# /api/db-health, HTTP redirect), and how long to keep trying, in seconds.
srq_hpn_verify = True
srq_hpn_verify_timeout = 120

# --- Application source ------------------------------------------------------

# Where the app (apps/api, apps/web) comes from: "upload" sends a local checkout,
# "git" clones a repository on the server.
srq_hpn_app_source = "upload"

# upload: path of the local checkout, relative to this repository or absolute.
srq_hpn_app_local_path = "examples/srq-hpn-app"

# git: repository URL, branch, and an optional local path of a deploy key
# (a read-only SSH key of that repository) to install on the server.
srq_hpn_app_git_repo = ""
srq_hpn_app_git_branch = "main"
srq_hpn_app_git_deploy_key = ""

# Paths of the api and web build contexts inside the source.
srq_hpn_api_path = "apps/api"
srq_hpn_web_path = "apps/web"

# Base images passed to the app's Dockerfiles as the build argument BASE_IMAGE.
# Empty: the Dockerfile's own default.
app_api_base_image = ""
app_web_base_image = ""

# NEXT_PUBLIC_API_BASE_URL: empty means the web calls /api/* relatively, via Caddy.
app_next_public_api_base_url = ""

# --- Database ----------------------------------------------------------------

# POSTGRES_DB, POSTGRES_USER (superuser, migrations) and POSTGRES_APP_USER
# (least-privilege role of the running api).
postgres_db = "srq_hpn"
postgres_user = "srq_hpn"
postgres_app_user = "srq_hpn_app"

# PostgreSQL server image.
postgres_image = "postgres:16"

# Publish 5432 on the server's 127.0.0.1 only, for SSH tunnels (never publicly).
postgres_publish_localhost = True

# Seconds to wait for the database's healthcheck to report healthy.
postgres_healthy_timeout = 180

# --- Caddy -------------------------------------------------------------------

# Caddy image.
caddy_image = "caddy:2"

# TLS: "letsencrypt" (public ACME certificates; DNS must point at the server)
# or "internal" (Caddy's own CA, for staging and tests).
caddy_tls = "letsencrypt"

# Optional ACME account email and ACME directory URL (e.g. Let's Encrypt staging).
caddy_acme_email = ""
caddy_acme_ca = ""

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

# Optional registry mirrors and plain-HTTP registries for /etc/docker/daemon.json.
docker_registry_mirrors = []
docker_insecure_registries = []
