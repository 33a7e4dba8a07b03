# The checks of the guide's Production Checklist, one function per item, shared by
# srq-hpn-check (the checklist: one JSON line per item) and srq-hpn-monitor (alerts).
# Sourced after lib.sh. Managed by srq-hpn-deploy. Changes made here are overwritten
# on the next deploy.
#
# A check_<item> function prints one record, "STATUS<TAB>EVIDENCE", where STATUS is
# pass, warn, fail, cannot-check, or not-set-up (a warn: that part is not installed), or
# not-applicable (the item is not this server's to judge: its role, see ROLE in deploy.env).
# The evidence names files, containers, ports, ages and counts: never a secret's value.
# Every check only reads: nothing on the server changes.

CHECKS_DIR=$(dirname "${BASH_SOURCE[0]}")
for part in checks-judge.sh checks-security.sh checks-web.sh checks-data.sh checks-upkeep.sh; do
	# shellcheck disable=SC1090
	. "$CHECKS_DIR/$part"
done

result() { printf '%s\t%s\n' "$1" "$2"; }

# run_check ITEM: "ITEM<TAB>STATUS<TAB>EVIDENCE". A check that breaks is reported as
# cannot-check with its last error line, never as a pass.
run_check() {
	local item=$1 err record status evidence why
	if why=$(not_applicable "$item") && [ -n "$why" ]; then
		printf '%s\tnot-applicable\t%s\n' "$item" "$why"
		return
	fi
	if ! declare -F "check_$item" >/dev/null; then
		printf '%s\tcannot-check\tthis server has no check %s (deploy to update its programs)\n' "$item" "$item"
		return
	fi
	err=$(mktemp)
	record=$( (set +e +o pipefail; "check_$item") 2>"$err" | head -n 1) || true
	if [ -z "$record" ]; then
		record=$(printf 'cannot-check\tthe check failed: %s' "$(tail -n 1 "$err" | cut -c1-300)")
	fi
	rm -f "$err"
	status=${record%%$'\t'*}
	evidence=${record#*$'\t'}
	printf '%s\t%s\t%s\n' "$item" "$status" "$evidence"
}

# All the items this server can check, in the checklist's order.
all_checks() { declare -F | awk '{print $3}' | sed -n 's/^check_//p'; }

# --- What the checks read ---------------------------------------------------------

# The project's containers (not one-offs): ids, with `running`: the running ones only.
project_containers() {
	local filters=(--filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.oneoff=False")
	if [ "${1:-}" = running ]; then docker ps -q "${filters[@]}"; else docker ps -aq "${filters[@]}"; fi
}

# state SERVICE: "NAME STATUS HEALTH STARTED EXITCODE" of a compose service's container, or nothing.
service_state() {
	local id
	id=$(service_container "$1")
	[ -n "$id" ] || return 0
	docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.StartedAt}} {{.State.ExitCode}}' "$id" 2>/dev/null |
		sed 's|^/||'
}

service_running() { [ "$(service_state "$1" | awk '{print $2}')" = running ]; }

# epoch TIME: seconds since 1970 of a date docker, openssl or systemd print.
epoch() { date -d "$1" +%s 2>/dev/null; }

# timer_state TIMER: "missing" (not installed), "ok" (enabled and active), or else
# "<enabled state> and <active state>".
timer_state() {
	local enabled active
	if [ -z "$(systemctl list-unit-files --no-legend "$1" 2>/dev/null)" ]; then
		echo missing
		return
	fi
	enabled=$(systemctl is-enabled "$1" 2>/dev/null)
	active=$(systemctl is-active "$1" 2>/dev/null)
	if [ "$enabled" = enabled ] && [ "$active" = active ]; then echo ok; else echo "${enabled:-unknown} and ${active:-unknown}"; fi
}

# published_bindings: "CONTAINER HOST_ADDRESS HOST_PORT PORT/PROTO" for every port a
# running container publishes.
published_bindings() {
	local name ports binding host
	docker ps --format '{{.Names}}|{{.Ports}}' 2>/dev/null | while IFS='|' read -r name ports; do
		tr ',' '\n' <<<"$ports" | sed 's/^ *//' | grep -- '->' | while read -r binding; do
			host=${binding%%->*}
			printf '%s %s %s %s\n' "$name" "${host%:*}" "${host##*:}" "${binding#*->}"
		done
	done
}

# listening PORT: the addresses a TCP socket listens on for PORT (ss).
listening() { ss -Hltn "sport = :$1" 2>/dev/null | awk '{print $4}' | sed "s/:$1\$//" | sort -u; }

is_loopback() {
	case $1 in
	127.* | ::1 | '[::1]' | localhost) return 0 ;;
	*) return 1 ;;
	esac
}

# words LINES...: the lines joined by ", ".
words() { paste -sd, - | sed 's/,/, /g'; }
