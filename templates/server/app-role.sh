#!/usr/bin/env bash
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.
#
# The limited role of the running api ($POSTGRES_APP_USER): it may
# SELECT/INSERT/UPDATE/DELETE rows and use sequences in schema public, including
# on tables that migrations create later (default privileges), and nothing else:
# it creates nothing, owns nothing and is a member of no other role.
#
# Runs inside the db container (srq-hpn-app-role feeds it to `bash -s`), with the
# POSTGRES_* variables of .env.production in its environment:
#   - `check`: prints what differs from the wanted state (nothing when all is well)
#     and changes nothing;
#   - `grants`: as `check`, without the passwords (a restore drill's scratch
#     database: the role and its grants come from the backup, passwords never do);
#   - `apply`: makes it so; safe to repeat. The deploy runs it whenever `check`
#     reports a difference, so a volume that existed before (the postgres image then
#     skips the repository's db/init scripts), or a repository without such a
#     script, still ends up with the role and its grants.
# Passwords are read from the environment and never appear on a command line.
set -euo pipefail

mode="${1:-apply}"
: "${POSTGRES_USER:?}" "${POSTGRES_DB:?}" "${POSTGRES_APP_USER:?}"
[ "$mode" = grants ] || : "${POSTGRES_APP_PASSWORD:?}"

# With an external database (a client container: PGHOST, PGSSLMODE and the admin's PGPASSWORD
# set), the admin is the provider's role: no superuser, and its password is never changed here.
external=${PGHOST:+1}

psql_admin() {
	psql -X -q -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
		-v admin_user="$POSTGRES_USER" -v app_user="$POSTGRES_APP_USER" -v db_name="$POSTGRES_DB" \
		-v external="${external:-}" "$@"
}

# Can this role log in over TCP with the password from the environment? Uses the
# container's own address (the postgres image trusts 127.0.0.1 without a password), or the
# external database's.
password_works() {
	local address
	address=${PGHOST:-$(hostname -i 2>/dev/null | awk '{print $1}')}
	PGPASSWORD="$2" psql -X -q -h "${address:-127.0.0.1}" --username "$1" --dbname "$POSTGRES_DB" \
		-tAc 'SELECT 1' >/dev/null 2>&1
}

grants() {
	psql_admin -tA <<-'SQL'
		SELECT 'role ' || :'app_user' || ' is missing'
		WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user');
		SELECT 'role ' || rolname || ' has more than row privileges'
		FROM pg_roles WHERE rolname = :'app_user'
		  AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls OR NOT rolcanlogin);
		SELECT 'role ' || :'app_user' || ' lacks ' || p.priv || ' on ' || c.relname
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
		CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE')) AS p(priv)
		WHERE c.relkind IN ('r', 'p')
		  AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user')
		  AND CASE WHEN c.relkind IN ('r', 'p') THEN NOT has_table_privilege(:'app_user', c.oid, p.priv) END;
		SELECT 'role ' || :'app_user' || ' lacks USAGE on sequence ' || c.relname
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
		WHERE c.relkind = 'S'
		  AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user')
		  AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege(:'app_user', c.oid, 'USAGE') END;
		SELECT 'default privileges for new ' || kind || ' are missing'
		FROM (VALUES ('r', 'tables'), ('S', 'sequences')) AS k(objtype, kind)
		WHERE NOT EXISTS (
			SELECT 1 FROM pg_default_acl d
			JOIN pg_namespace n ON n.oid = d.defaclnamespace AND n.nspname = 'public'
			WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = :'admin_user')
			  AND d.defaclobjtype = k.objtype::"char"
			  AND array_to_string(d.defaclacl, ',') LIKE '%' || :'app_user' || '=%');
		SELECT 'PUBLIC may create objects in schema public'
		WHERE has_schema_privilege('public', 'public', 'CREATE');
		SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') AS app_role_exists \gset
		\if :app_role_exists
			SELECT 'role ' || :'app_user' || ' may create objects in schema public'
			WHERE has_schema_privilege(:'app_user', 'public', 'CREATE');
			SELECT 'role ' || :'app_user' || ' may create schemas in database ' || :'db_name'
			WHERE has_database_privilege(:'app_user', :'db_name', 'CREATE');
			SELECT 'role ' || :'app_user' || ' has ' || p.priv || ' on ' || c.relname
			FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
			CROSS JOIN (VALUES ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) AS p(priv)
			WHERE c.relkind IN ('r', 'p') AND has_table_privilege(:'app_user', c.oid, p.priv);
			SELECT 'role ' || :'app_user' || ' owns ' || count(*) || ' table(s), sequence(s) or view(s): an owner may alter and drop them'
			FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner AND r.rolname = :'app_user'
			HAVING count(*) > 0;
			SELECT 'role ' || :'app_user' || ' is a member of role ' || g.rolname || ' (and has its privileges)'
			FROM pg_auth_members m
			JOIN pg_roles g ON g.oid = m.roleid
			JOIN pg_roles r ON r.oid = m.member AND r.rolname = :'app_user';
		\endif
	SQL
}

check() {
	grants
	if ! password_works "$POSTGRES_APP_USER" "$POSTGRES_APP_PASSWORD"; then
		echo "password of role $POSTGRES_APP_USER differs from POSTGRES_APP_PASSWORD"
	fi
	if [ -n "${POSTGRES_PASSWORD:-}" ] && ! password_works "$POSTGRES_USER" "$POSTGRES_PASSWORD"; then
		echo "password of role $POSTGRES_USER differs from POSTGRES_PASSWORD"
	fi
}

apply() {
	local existed
	existed=$(psql_admin -tA <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'app_user';")
	psql_admin <<-'SQL'
		\set app_password `printenv POSTGRES_APP_PASSWORD`
		\set admin_password `printenv POSTGRES_PASSWORD`
		SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') AS create_role \gset
		\if :create_role
			CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
		\else
			ALTER ROLE :"app_user" LOGIN PASSWORD :'app_password';
		\endif
		SELECT :'admin_password' <> '' AND :'external' = '' AS set_admin_password \gset
		\if :set_admin_password
			ALTER ROLE :"admin_user" PASSWORD :'admin_password';
		\endif
		-- Only the attributes the role has are taken away: an admin that is not a superuser
		-- (a managed database's) may not name SUPERUSER, REPLICATION or BYPASSRLS at all.
		SELECT format('ALTER ROLE %I %s', rolname, attribute)
		FROM pg_roles
		CROSS JOIN LATERAL (VALUES (rolsuper, 'NOSUPERUSER'), (rolcreatedb, 'NOCREATEDB'),
			(rolcreaterole, 'NOCREATEROLE'), (rolreplication, 'NOREPLICATION'), (rolbypassrls, 'NOBYPASSRLS'))
			AS a(has, attribute)
		WHERE rolname = :'app_user' AND has \gexec
		REVOKE CREATE ON SCHEMA public FROM PUBLIC;
		REVOKE CREATE ON SCHEMA public FROM :"app_user";
		REVOKE CREATE ON DATABASE :"db_name" FROM :"app_user";
		REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM :"app_user";
		-- Only when it owns something here: an admin that is not a superuser may reassign a
		-- role's objects only with that role's privileges, which CREATEROLE does not give.
		SELECT EXISTS (
			SELECT 1 FROM pg_shdepend d JOIN pg_database b ON b.oid = d.dbid AND b.datname = current_database()
			WHERE d.deptype = 'o' AND d.refobjid = (SELECT oid FROM pg_roles WHERE rolname = :'app_user')
		) AS app_owns \gset
		\if :app_owns
			REASSIGN OWNED BY :"app_user" TO :"admin_user";
		\endif
		SELECT format('REVOKE %I FROM %I', g.rolname, :'app_user')
		FROM pg_auth_members m
		JOIN pg_roles g ON g.oid = m.roleid
		JOIN pg_roles r ON r.oid = m.member AND r.rolname = :'app_user' \gexec
		GRANT CONNECT ON DATABASE :"db_name" TO :"app_user";
		GRANT USAGE ON SCHEMA public TO :"app_user";
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_user";
		GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_user";
		ALTER DEFAULT PRIVILEGES FOR ROLE :"admin_user" IN SCHEMA public
			GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_user";
		ALTER DEFAULT PRIVILEGES FOR ROLE :"admin_user" IN SCHEMA public
			GRANT USAGE, SELECT ON SEQUENCES TO :"app_user";
	SQL
	if [ "$existed" = 1 ]; then
		echo "Limited app user '$POSTGRES_APP_USER' updated successfully"
	else
		echo "Limited app user '$POSTGRES_APP_USER' created successfully"
	fi
}

case "$mode" in
	check) check ;;
	grants) grants ;;
	apply) apply ;;
	*)
		echo "usage: $0 [check|grants|apply]" >&2
		exit 2
		;;
esac
