#!/usr/bin/env bash
# Runs once, when the postgres image initialises an empty data volume: creates the
# limited role of the running api. It may read and write rows (and use sequences),
# also on tables that migrations create later, and nothing else.
set -euo pipefail

: "${POSTGRES_APP_USER:?}" "${POSTGRES_APP_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v app_user="$POSTGRES_APP_USER" -v app_password="$POSTGRES_APP_PASSWORD" \
	-v admin_user="$POSTGRES_USER" -v db_name="$POSTGRES_DB" <<-'SQL'
	CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
	REVOKE CREATE ON SCHEMA public FROM PUBLIC;
	GRANT CONNECT ON DATABASE :"db_name" TO :"app_user";
	GRANT USAGE ON SCHEMA public TO :"app_user";
	GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_user";
	GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_user";
	ALTER DEFAULT PRIVILEGES FOR ROLE :"admin_user" IN SCHEMA public
		GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_user";
	ALTER DEFAULT PRIVILEGES FOR ROLE :"admin_user" IN SCHEMA public
		GRANT USAGE, SELECT ON SEQUENCES TO :"app_user";
SQL

echo "Limited app user '$POSTGRES_APP_USER' created successfully"
