# The scratch database of the restore drill and of the migration rehearsal: a PostgreSQL
# container of the live database's image, beside the live one, never touching it
# (sourced after lib.sh and backup.sh, not run).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.

# scratch_start CONTAINER IMAGE DOCKER-RUN-OPTION...: start CONTAINER from IMAGE with the
# options given (its label, its network), the superuser and database of deploy.env, and
# POSTGRES_PASSWORD from the caller's environment (never on a command line); wait until it
# accepts connections, at most DB_READY_TIMEOUT seconds. Returns 1, with its last log lines
# on stderr, when it does not.
scratch_start() {
	local container=$1 image=$2 waited=0
	shift 2
	docker run -d --name "$container" "$@" -e POSTGRES_USER="$DB_USER" -e POSTGRES_DB="$DB_NAME" \
		-e POSTGRES_PASSWORD "$image" >/dev/null || return 1
	until docker exec "$container" pg_isready -q -h 127.0.0.1 >/dev/null 2>&1; do
		if [ "$waited" -ge "$DB_READY_TIMEOUT" ] || ! is_running "$container"; then
			log_tail "$container" >&2
			return 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
}

# scratch_sql CONTAINER DATABASE ARGS...: psql as the superuser in a scratch container.
scratch_sql() {
	local container=$1 database=$2
	shift 2
	docker exec -i "$container" psql -X -q -v ON_ERROR_STOP=1 --username "$DB_USER" --dbname "$database" "$@"
}

# scratch_rows CONTAINER: "schema.table<TAB>rows" for every table of the scratch database.
scratch_rows() {
	scratch_sql "$1" "$DB_NAME" -tA -F $'\t' <<-'SQL'
		SELECT format('SELECT %L, count(*) FROM ONLY %I.%I', format('%I.%I', schemaname, tablename), schemaname, tablename)
		FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 \gexec
	SQL
}
