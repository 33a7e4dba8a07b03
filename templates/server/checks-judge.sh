# Pure helpers of the checks (sourced; no server state is read here, so the unit
# tests run them as they are): verdicts from numbers, durations in words, JSON.
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.

# judge_free_percent FREE WARN FAIL: fail under FAIL % free, warn under WARN %, else pass.
judge_free_percent() {
	if [ "$1" -lt "$3" ]; then echo fail; elif [ "$1" -lt "$2" ]; then echo warn; else echo pass; fi
}

# judge_certificate REMAINING_S LIFETIME_S WARN_DAYS FAIL_DAYS: a certificate's verdict.
# The day limits are for certificates of 90 days (Let's Encrypt, renewed with 30 days
# left); a shorter-lived one (Caddy's internal CA: 12 h, renewed with 4 h left) is
# held to the same share of its lifetime, so a healthy one never warns.
judge_certificate() {
	local remaining=$1 lifetime=$2 warn=$(($3 * 86400)) fail=$(($4 * 86400)) ninety=$((90 * 86400))
	if [ "$lifetime" -lt "$ninety" ]; then
		warn=$((lifetime * $3 / 90))
		fail=$((lifetime * $4 / 90))
	fi
	if [ "$remaining" -lt "$fail" ]; then echo fail; elif [ "$remaining" -lt "$warn" ]; then echo warn; else echo pass; fi
}

# in_words SECONDS: "40 s", "25 min", "11 h", "3 days".
in_words() {
	local s=$1
	if [ "$s" -lt 0 ]; then s=0; fi
	if [ "$s" -lt 120 ]; then echo "$s s"
	elif [ "$s" -lt 7200 ]; then echo "$((s / 60)) min"
	elif [ "$s" -lt 172800 ]; then echo "$((s / 3600)) h"
	else echo "$((s / 86400)) days"; fi
}

# password_problem NAME VALUE: why a password is weak (nothing when it is not). Uses
# MIN_PASSWORD_LENGTH, MIN_DISTINCT_PASSWORD_CHARS and KNOWN_DEFAULT_PASSWORDS (deploy.env).
# Says lengths and counts, never the value.
password_problem() {
	local name=$1 value=$2 known distinct
	for known in $KNOWN_DEFAULT_PASSWORDS; do
		if [ "${value,,}" = "${known,,}" ]; then
			echo "$name is a known default or placeholder"
			return
		fi
	done
	if [ -z "$value" ]; then
		echo "$name is empty"
	elif [ "${#value}" -lt "$MIN_PASSWORD_LENGTH" ]; then
		echo "$name is too short (${#value} characters, at least $MIN_PASSWORD_LENGTH)"
	else
		distinct=$(printf '%s' "$value" | fold -w1 | sort -u | wc -l)
		if [ "$distinct" -lt "$MIN_DISTINCT_PASSWORD_CHARS" ]; then
			echo "$name does not look random (only $distinct distinct characters)"
		fi
	fi
}

# percent_encode TEXT: as a URL's password is written (every byte but A-Z a-z 0-9 . _ ~ -).
percent_encode() {
	local LC_ALL=C text=$1 i c out=""
	for ((i = 0; i < ${#text}; i++)); do
		c=${text:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# json_string TEXT: TEXT as a JSON string (control characters become spaces).
json_string() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=$(printf '%s' "$s" | tr '\000-\037' ' ')
	printf '"%s"' "$s"
}

# json_record ITEM STATUS EVIDENCE: one line of srq-hpn-check. The status not-set-up
# is a warn that says so ("not_set_up": true); not-applicable is n/a (the server's role).
json_record() {
	local status=$2 not_set_up=false
	if [ "$status" = not-set-up ]; then status=warn not_set_up=true; fi
	if [ "$status" = not-applicable ]; then status=n/a; fi
	printf '{"item":%s,"status":%s,"not_set_up":%s,"evidence":%s}\n' \
		"$(json_string "$1")" "$(json_string "$status")" "$not_set_up" "$(json_string "$3")"
}

# alert_level STATUS PREVIOUS: what the monitor compares between runs: fail, warn, or
# ok (pass and not-set-up are not problems to alert on). A check that cannot tell
# (cannot-check) holds PREVIOUS, the level of the last alert: a problem it can no
# longer see has not recovered, and one it never saw is not raised.
alert_level() {
	case $1 in
	fail | warn) echo "$1" ;;
	cannot-check) echo "${2:-ok}" ;;
	*) echo ok ;;
	esac
}

# alert_event PREVIOUS CURRENT: the alert to send when an item's level changed
# (problem or recovered), nothing when it did not.
alert_event() {
	if [ "$1" = "$2" ]; then return; fi
	if [ "$2" = ok ]; then echo recovered; else echo problem; fi
}

# not_applicable ITEM: why ITEM is not this server's to judge, or nothing when it is: the
# server's role (ROLE in deploy.env: an edge holds no database and no secret; an app server
# behind the edge serves no HTTPS), an external database (its port and point-in-time
# recovery are the provider's), a group whose shared database another app server backs up.
not_applicable() {
	case "${ROLE:-server}:$1" in
	edge:passwords | edge:secrets_in_git | edge:env_file | edge:api_superuser | edge:password_age)
		echo "the edge holds no password and no secret of the app (Caddy and its certificate only)" ;;
	edge:migrations | edge:app_role | edge:backups | edge:wal_archive | edge:restore_drill)
		echo "the edge has no database: run the checklist on the app servers" ;;
	edge:containers)
		echo "the edge runs Caddy alone: see the caddy item" ;;
	app:dns | app:https | app:http_redirect)
		echo "HTTPS is the edge's: this app server answers plain HTTP on ${PRIVATE_ADDRESS:-its private address}:80 only (run the checklist on the edge)" ;;
	*:db_port)
		[ -z "${DB_HOST:-}" ] || echo "the database is external ($DB_HOST:$DB_PORT): nothing of it listens here, and its exposure is the provider's" ;;
	*:wal_archive)
		[ -z "${DB_HOST:-}" ] || echo "the database is external ($DB_HOST): its point-in-time recovery is the provider's (turn it on in its console); the logical backups still run" ;;
	*:backups | *:restore_drill)
		[ -z "${BACKUPS_ON:-}" ] || echo "the group's shared database is backed up, and its backups drilled, on $BACKUPS_ON" ;;
	esac
}
