# Checks of the guide's "Security" items (sourced by checks.sh).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.

# Generated strong, unique passwords: judged here, on the server; never shown.
check_passwords() {
	local env="$APP_DIR/$ENV_FILE" problems
	[ -r "$env" ] || {
		result fail "$env is missing: deploy first"
		return
	}
	problems=$(
		admin=$(env_value POSTGRES_PASSWORD) || admin=""
		app=$(env_value POSTGRES_APP_PASSWORD) || app=""
		password_problem POSTGRES_PASSWORD "$admin"
		password_problem POSTGRES_APP_PASSWORD "$app"
		if [ -n "$admin" ] && [ "$admin" = "$app" ]; then
			echo "POSTGRES_PASSWORD and POSTGRES_APP_PASSWORD are the same"
		fi
	)
	if [ -n "$problems" ]; then
		result fail "$(words <<<"$problems"); generate new ones (openssl rand -base64 32), export them and deploy"
	else
		result pass "POSTGRES_PASSWORD and POSTGRES_APP_PASSWORD in $ENV_FILE: at least $MIN_PASSWORD_LENGTH characters, random-looking, not a known default, different from each other"
	fi
}

# Passwords not in git: no env file tracked by the app's repository.
check_secrets_in_git() {
	local tracked where
	if [ -d "$APP_DIR/.git" ]; then
		tracked=$(git -C "$APP_DIR" ls-files 2>/dev/null | tracked_env_files)
		where="the app's git checkout"
	elif [ -f "$STATE_DIR/source.manifest" ]; then
		tracked=$(cut -c67- "$STATE_DIR/source.manifest" | tracked_env_files)
		where="the uploaded checkout (the files the app's repository tracks)"
	else
		result cannot-check "$APP_DIR is neither a git checkout nor an upload of this deploy"
		return
	fi
	if [ -n "$tracked" ]; then
		result fail "$where holds $(words <<<"$tracked"): secrets belong in $ENV_FILE on the server only (git rm --cached, and rotate what was committed)"
	else
		result pass "$where holds no env file (.env, .env.*; examples aside); the secrets are only in $APP_DIR/$ENV_FILE"
	fi
}

tracked_env_files() { grep -E '(^|/)\.env($|\.)' | grep -vE '\.(example|sample|template|dist)$' || true; }

# The secrets file is root's alone.
check_env_file() {
	local env="$APP_DIR/$ENV_FILE" mode owner
	[ -e "$env" ] || {
		result fail "$env is missing: deploy first"
		return
	}
	read -r mode owner < <(stat -c '%a %U:%G' "$env")
	if [ "$mode" = 600 ] && [ "$owner" = root:root ]; then
		result pass "$env is mode 600, owned by root:root"
	else
		result fail "$env is mode $mode, owned by $owner: it holds the passwords (wanted 600 root:root; chmod 600 $env)"
	fi
}

# Database port (5432) NOT exposed to the internet: what listens, and what is published.
check_db_port() {
	local address public="" published="" name host port target
	command -v ss >/dev/null || {
		result cannot-check "ss (iproute2) is not installed"
		return
	}
	for address in $(listening 5432); do
		is_loopback "$address" || public+="${public:+, }$address:5432"
	done
	while read -r name host port target; do
		[ "$port" = 5432 ] || [ "$target" = 5432/tcp ] || continue
		published+="${published:+, }$name $host:$port->$target"
		is_loopback "$host" || public+="${public:+, }$name publishes $host:$port"
	done < <(published_bindings)
	if [ -n "$public" ]; then
		result fail "5432 is reachable from outside: $public (publish it on 127.0.0.1 only, or not at all)"
	elif [ -n "$published" ]; then
		result pass "5432 on 127.0.0.1 only ($published); from outside only through SSH"
	else
		result pass "5432 is not published and nothing listens on it publicly"
	fi
}

# API/Web ports (8000, 3000) NOT exposed; only Caddy publishes public ports (5432: see above).
check_app_ports() {
	local address problems="" caddy_ports="" name host port target caddy
	caddy=${CADDY_CONTAINER:-srq-hpn-caddy}
	for port in 3000 8000; do
		for address in $(listening "$port"); do
			is_loopback "$address" || problems+="${problems:+, }something listens on $address:$port"
		done
	done
	while read -r name host port target; do
		case " $port $target " in
		*" 3000 "* | *" 8000 "* | *" 3000/tcp "* | *" 8000/tcp "*)
			problems+="${problems:+, }$name publishes $host:$port->$target"
			continue
			;;
		esac
		[ "$port" = 5432 ] || [ "$target" = 5432/tcp ] || is_loopback "$host" && continue
		if [ "$name" = "$caddy" ]; then
			case " $caddy_ports " in *" $target "*) ;; *) caddy_ports+="${caddy_ports:+ }$target" ;; esac
		else
			problems+="${problems:+, }$name publishes $host:$port->$target"
		fi
	done < <(published_bindings)
	if [ -n "$problems" ]; then
		result fail "$problems (only Caddy may be public; api and web are reached through it)"
	else
		result pass "nothing publishes or listens publicly on 3000 or 8000; public ports: ${caddy_ports:-none} of $caddy only"
	fi
}

# The running app holds no superuser credentials (a warn: the guide's own
# `exec api alembic upgrade head` has the api hold the admin URL).
check_api_superuser() {
	local env="$APP_DIR/$ENV_FILE" holders
	[ -r "$env" ] || {
		result cannot-check "$env is missing"
		return
	}
	if [ -z "$(project_containers running)" ]; then
		result cannot-check "no container of the stack is running"
		return
	fi
	holders=$(
		password=$(env_value POSTGRES_PASSWORD) || exit 0
		[ -n "$password" ] || exit 0
		encoded=$(percent_encode "$password")
		for id in $(project_containers running); do
			read -r name service < <(docker inspect --format \
				'{{.Name}} {{index .Config.Labels "com.docker.compose.service"}}' "$id" 2>/dev/null)
			[ "$service" = "$DB_SERVICE" ] && continue
			docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$id" 2>/dev/null |
				while IFS= read -r entry; do
					value=${entry#*=}
					if [[ $value == *"$password"* || $value == *"$encoded"* ]]; then
						echo "${name#/} (${entry%%=*})"
					fi
				done
		done
	)
	if [ -n "$holders" ]; then
		result warn "the superuser's password is in $(words <<<"$holders"): the app's compose file gives it to the running app (as the guide's does, for exec api alembic upgrade head); the deploy migrates with run --rm, so the running api needs only DATABASE_URL"
	else
		result pass "no running container but the database holds the superuser's password"
	fi
}
