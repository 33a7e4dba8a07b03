# Shared functions of the srq-hpn server programs (sourced, not run).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.
#
# Reads /etc/srq-hpn/deploy.env (settings) and $STATE_DIR/stack.env (what the
# deploy learnt from the app's compose file: project name, container names).

set -euo pipefail

SRQ_HPN_CONFIG=${SRQ_HPN_CONFIG:-/etc/srq-hpn/deploy.env}
if [ ! -r "$SRQ_HPN_CONFIG" ]; then
	echo "srq-hpn: $SRQ_HPN_CONFIG is missing: deploy this server first (pyinfra inventory.py deploy.py)" >&2
	exit 2
fi
# shellcheck disable=SC1090
. "$SRQ_HPN_CONFIG"
# shellcheck disable=SC1090
[ -r "$STATE_DIR/stack.env" ] && . "$STATE_DIR/stack.env"
PROJECT=${PROJECT:-srq-hpn}

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() {
	printf '%s\n' "$*" >&2
	exit 1
}

# The guide's own command form: run in the app directory with the env file.
compose() { (cd "$APP_DIR" && docker compose --env-file "$ENV_FILE" "$@"); }

# env_value NAME: the value of NAME in the app's env file ($APP_DIR/$ENV_FILE), read
# as text: the last NAME=... line, without the quotes around it (the deploy writes
# NAME='value', and COMPOSE_FILE=value). Nothing in it is ever run or expanded: the
# file is never sourced (a value may hold quotes, $(...) or backquotes). Returns 1,
# printing nothing, when the file cannot be read or has no such line.
env_value() {
	local line value found=1
	[ -r "$APP_DIR/$ENV_FILE" ] || return 1
	while IFS= read -r line || [ -n "$line" ]; do
		if [[ $line == "$1="* ]]; then
			value=${line#*=}
			found=0
		fi
	done <"$APP_DIR/$ENV_FILE"
	[ "$found" = 0 ] || return 1
	if [ ${#value} -ge 2 ] && [[ ${value:0:1} == [\'\"] ]] && [ "${value:0:1}" = "${value: -1}" ]; then
		value=${value:1:${#value}-2}
	fi
	printf '%s' "$value"
}

# The container of a compose service (not a one-off), or nothing.
service_container() {
	docker ps -aq --no-trunc \
		--filter "label=com.docker.compose.project=$PROJECT" \
		--filter "label=com.docker.compose.service=$1" \
		--filter "label=com.docker.compose.oneoff=False" | head -n 1
}

# external_db: whether the stack's database is an external one (postgres_host), not its db service.
external_db() { [ -n "${DB_HOST:-}" ]; }

# db_client: with an external database, starts a client container (the db service's image,
# on the server's network, PGHOST, PGPORT, PGSSLMODE and the CA for the external database,
# PGPASSWORD the admin's from the env file, handed over by name) in which `docker exec` runs
# psql, pg_dump, ... as it would in the db service's container; prints its id. The caller
# removes it (db_client_stop); it ends by itself after an hour.
db_client() {
	local -a tls=()
	[ ! -r "$DB_CA_FILE" ] || tls=(-v "$DB_CA_FILE:$DB_CA_MOUNT:ro" -e "PGSSLROOTCERT=$DB_CA_MOUNT")
	(
		PGPASSWORD=$(env_value POSTGRES_PASSWORD) || PGPASSWORD=""
		export PGPASSWORD
		docker run -d --rm --network host --label "$DB_CLIENT_LABEL=$$" -e PGPASSWORD -e "PGHOST=$DB_HOST" \
			-e "PGPORT=$DB_PORT" -e "PGSSLMODE=$DB_SSLMODE" -e PGCONNECT_TIMEOUT=10 "${tls[@]}" \
			--entrypoint sleep "$DB_IMAGE" 3600
	)
}
db_client_stop() { [ -z "${1:-}" ] || docker rm -f "$1" >/dev/null 2>&1 || true; }

# db_exec [-i] [-e NAME[=VALUE]]... COMMAND...: a PostgreSQL client command against the stack's
# database, in the db service's container, or with an external database in a client container
# of its own (db_client), removed after.
db_exec() {
	local -a opts=()
	while [ $# -gt 0 ]; do
		case $1 in
		-i) opts+=(-i); shift ;;
		-e | -u) opts+=("$1" "$2"); shift 2 ;;
		*) break ;;
		esac
	done
	if ! external_db; then
		local container
		container=$(service_container "$DB_SERVICE")
		[ -n "$container" ] || { warn "the $DB_SERVICE service has no container"; return 1; }
		docker exec "${opts[@]}" "$container" "$@"
		return
	fi
	local client code=0
	client=$(db_client) || { warn "could not start a client of the database $DB_HOST:$DB_PORT (image $DB_IMAGE)"; return 1; }
	docker exec "${opts[@]}" "$client" "$@" || code=$?
	db_client_stop "$client"
	return "$code"
}

# db_image: the image of the database's server: the db service container's (its id), or with an
# external database the db service's image (pulled when missing); nothing and 1 when unknown.
db_image() {
	local live
	if external_db; then
		[ -n "${DB_IMAGE:-}" ] || return 1
		docker image inspect "$DB_IMAGE" >/dev/null 2>&1 || docker pull -q "$DB_IMAGE" >/dev/null 2>&1 || return 1
		echo "$DB_IMAGE"
		return 0
	fi
	live=$(service_container "$DB_SERVICE") && [ -n "$live" ] || return 1
	docker inspect --format '{{.Image}}' "$live"
}

# live_revisions: the alembic revisions production's database is at now, comma-separated and
# sorted (as srq-hpn-migrate's --to writes them), or nothing when they cannot be read.
live_revisions() {
	local live query='SELECT version_num FROM alembic_version ORDER BY 1'
	if external_db; then  # a client container; PGCONNECT_TIMEOUT bounds the wait
		db_exec psql -X -tA --username "$DB_USER" --dbname "$DB_NAME" -c "$query" 2>/dev/null | paste -sd, - || true
		return 0
	fi
	live=$(service_container "$DB_SERVICE") && [ -n "$live" ] || return 0
	timeout 15 docker exec "$live" psql -X -tA --username "$DB_USER" --dbname "$DB_NAME" \
		-c "$query" 2>/dev/null | paste -sd, - || true
}

# Whether a container (an id or a name; none given is none) exists and runs.
is_running() { [ -n "${1:-}" ] && [ "$(docker inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

container_name() { docker inspect --format '{{.Name}}' "$1" 2>/dev/null | sed 's|^/||'; }

# The port Caddy sends a service's traffic to, if it is one of Caddy's upstreams.
upstream_port() {
	local pair
	for pair in $UPSTREAMS; do
		[ "${pair%%:*}" = "$1" ] && {
			echo "${pair#*:}"
			return 0
		}
	done
	return 1
}

# Last log lines of a container, indented, for a failure report.
log_tail() {
	docker logs --tail "${2:-30}" "$1" 2>&1 | sed 's/^/  | /' || true
}

# One readiness probe: 0 ready, 1 not yet, 2 stopped for good.
# Ready means: running, and its own healthcheck passes now (run here, so the deploy
# moves on as soon as it is true, not at Docker's next interval); without a
# healthcheck, an HTTP answer on its upstream port, or else simply running.
# The database must also accept TCP connections (not only its init-time socket).
probe() {
	local container=$1 service=$2 state health code port address
	read -r state health code < <(docker inspect --format \
		'{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' \
		"$container" 2>/dev/null) || return 2
	case $state in
	running) ;;
	created | restarting) return 1 ;;
	exited)
		# A one-shot service of the app's own (a job that ran and finished) is done;
		# the stack's long-running services never are.
		if [ "$code" = 0 ] && [ "$service" != "$DB_SERVICE" ] && [ "$service" != "$CADDY_SERVICE" ] &&
			! upstream_port "$service" >/dev/null; then
			return 0
		fi
		return 2
		;;
	*) return 2 ;;
	esac
	if [ "$service" = "$DB_SERVICE" ]; then
		timeout 10 docker exec "$container" pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1 || return 1
	fi
	[ "$health" = healthy ] && return 0
	local -a test
	mapfile -t test < <(docker inspect --format \
		'{{if .Config.Healthcheck}}{{join .Config.Healthcheck.Test "\n"}}{{end}}' "$container")
	case ${test[0]:-} in
	CMD) timeout 10 docker exec "$container" "${test[@]:1}" >/dev/null 2>&1 && return 0 || return 1 ;;
	CMD-SHELL) timeout 10 docker exec "$container" sh -c "${test[1]}" >/dev/null 2>&1 && return 0 || return 1 ;;
	esac
	if port=$(upstream_port "$service"); then
		address=$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$container" | awk '{print $1}')
		[ -n "$address" ] && curl -s -o /dev/null -m 2 "http://$address:$port/" && return 0
		return 1
	fi
	return 0
}

# wait_ready CONTAINER SERVICE TIMEOUT [WHAT]: 0 when ready; otherwise reports why, with
# the container's last log lines, and returns 1. WHAT names it in messages (the service).
wait_ready() {
	local container=$1 service=$2 timeout=$3 started=$SECONDS last=0 name state
	name=$(container_name "$container")
	local service_label=${4:-$service}
	while true; do
		if probe "$container" "$service"; then
			say "$service_label ($name) is ready after $((SECONDS - started))s"
			return 0
		elif [ $? -eq 2 ]; then
			state=$(docker inspect --format '{{.State.Status}} (exit code {{.State.ExitCode}})' "$container" 2>/dev/null || echo removed)
			warn "$service_label ($name) stopped: $state. Its last log lines:"
			log_tail "$container" >&2
			return 1
		fi
		if [ $((SECONDS - started)) -ge "$timeout" ]; then
			state=$(docker inspect --format '{{.State.Status}}, health {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$container" 2>/dev/null || echo removed)
			warn "$service_label ($name) is not ready after ${timeout}s ($state). Its last log lines:"
			log_tail "$container" >&2
			return 1
		fi
		if [ $((SECONDS - last)) -ge 5 ] && [ $((SECONDS - started)) -gt 0 ]; then
			say "waiting for $service_label ($name): $((SECONDS - started))s of ${timeout}s"
			last=$SECONDS
		fi
		sleep 0.25
	done
}

# alembic_words: alembic's output (stdin) as the operator reads it: its own lines and the
# error it ends with, without the Python traceback's frames in between.
alembic_words() {
	awk '
		/^Traceback \(most recent call last\):$/ { frames = 1; next }
		frames && /^  / { next }
		{ frames = 0 }
		/^(The above exception was the direct cause of the following exception:|During handling of the above exception, another exception occurred:)$/ { next }
		NF { print }
	'
}
