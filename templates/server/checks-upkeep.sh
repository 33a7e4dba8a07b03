# Checks of the guide's "Monitoring" and "Ongoing Maintenance" items (sourced by checks.sh).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.

# Monitoring/alerts for container health: the monitor's timer and its last run.
check_monitoring() {
	local state when outcome message age
	state=$(timer_state "$MONITOR_TIMER")
	case $state in
	missing)
		result not-set-up "no alerts: the monitor is installed when a webhook URL is given (export SRQ_HPN_MONITOR_WEBHOOK_URL=... and deploy)"
		return
		;;
	ok) ;;
	*)
		result fail "$MONITOR_TIMER is $state: nothing is watched (systemctl enable --now $MONITOR_TIMER)"
		return
		;;
	esac
	if [ ! -f "$MONITOR_DIR/last-run" ]; then
		result warn "$MONITOR_TIMER is enabled (every ${MONITOR_INTERVAL}s) and has not run yet"
		return
	fi
	read -r when outcome message <"$MONITOR_DIR/last-run"
	age=$(($(date +%s) - when))
	if [ "$age" -gt $((3 * MONITOR_INTERVAL + 60)) ]; then
		result fail "the monitor last ran $(in_words "$age") ago (every ${MONITOR_INTERVAL}s expected): systemctl status ${MONITOR_TIMER%.timer}.service"
	elif [ "$outcome" != ok ]; then
		result fail "the monitor's last run, $(in_words "$age") ago, could not alert: $message"
	else
		result pass "checks ${MONITOR_CHECKS// /, } every ${MONITOR_INTERVAL}s, alerts the webhook on each change; last run $(in_words "$age") ago: $message"
	fi
}

# Container health: every service of the app's compose file but Caddy (its own line).
check_containers() {
	local services service name status health started code problems="" fine="" state
	services=$(compose config --services 2>/dev/null) || services=""
	if [ -z "$services" ]; then
		services=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" \
			--format '{{.Label "com.docker.compose.service"}}' 2>/dev/null | sort -u)
	fi
	for service in $services; do
		[ "$service" = "$CADDY_SERVICE" ] && continue
		state=$(service_state "$service")
		if [ -z "$state" ]; then
			problems+="${problems:+; }$service has no container"
			continue
		fi
		read -r name status health started code <<<"$state"
		if [ "$status" != running ]; then
			problems+="${problems:+; }$service ($name) $status (exit code $code)"
		elif [ "$health" = unhealthy ]; then
			problems+="${problems:+; }$service ($name) unhealthy"
		elif [ "$health" = none ]; then
			fine+="${fine:+, }$service"
		else
			fine+="${fine:+, }$service ($health)"
		fi
	done
	if [ -z "$problems$fine" ]; then
		result fail "the stack has no containers (project $PROJECT)"
	elif [ -n "$problems" ]; then
		result fail "$problems${fine:+; running: $fine}"
	else
		result pass "running: $fine"
	fi
}

# Log aggregation (optional): the stack's containers log to the journal, and
# systemd-journal-upload has sent the journal to the collector (its state file holds the
# cursor of the last entry the collector took) up to the last few minutes.
check_logs() {
	local state id name driver elsewhere="" cursor waiting since age now
	if [ -z "${LOG_SHIPPING_URL:-}" ]; then
		result not-set-up "no log shipping: the logs stay on the server (set log_shipping_url to a systemd-journal-remote collector and deploy)"
		return
	fi
	state=$(systemctl is-active "$LOG_SHIPPING_SERVICE" 2>/dev/null) || true
	if [ "$state" != active ]; then
		result fail "$LOG_SHIPPING_SERVICE is ${state:-unknown}: the logs are not shipped to $LOG_SHIPPING_URL$(last_words "$LOG_SHIPPING_SERVICE") (systemctl status ${LOG_SHIPPING_SERVICE%.service})"
		return
	fi
	for id in $(project_containers running); do
		read -r name driver < <(docker inspect --format '{{.Name}} {{.HostConfig.LogConfig.Type}}' "$id" 2>/dev/null)
		[ "$driver" = "$LOG_DRIVER" ] || elsewhere+="${elsewhere:+, }${name#/} ($driver)"
	done
	if [ -n "$elsewhere" ]; then
		result fail "not logging to the journal, so not shipped: $elsewhere (deploy to recreate them)"
		return
	fi
	now=$(date +%s)
	cursor=$(sed -n 's/^LAST_CURSOR=//p' "$LOG_SHIPPING_STATE" 2>/dev/null | tail -n 1)
	if [ -z "$cursor" ]; then
		since=$(epoch "$(systemctl show -P ActiveEnterTimestamp "$LOG_SHIPPING_SERVICE")")
		age=$((now - ${since:-0}))
		if [ "$age" -gt "$LOG_SHIPPING_MAX_LAG" ]; then
			result fail "$LOG_SHIPPING_SERVICE has sent nothing to $LOG_SHIPPING_URL in the $(in_words "$age") since it started$(last_words "$LOG_SHIPPING_SERVICE")"
		else
			result warn "$LOG_SHIPPING_SERVICE started $(in_words "$age") ago and has sent nothing to $LOG_SHIPPING_URL yet"
		fi
		return
	fi
	# The oldest entry of the journal that the collector has not taken yet, if any.
	waiting=$(journalctl --no-pager -q -o short-unix --after-cursor="$cursor" 2>/dev/null | head -n 1 | cut -d' ' -f1)
	waiting=${waiting%.*}
	[[ $waiting =~ ^[0-9]+$ ]] || waiting=""
	age=$((now - ${waiting:-$now}))
	if [ -n "$waiting" ] && [ "$age" -gt "$LOG_SHIPPING_MAX_LAG" ]; then
		result fail "the collector at $LOG_SHIPPING_URL has not taken the journal's lines of the last $(in_words "$age")$(last_words "$LOG_SHIPPING_SERVICE")"
	elif [ -n "$waiting" ]; then
		result pass "the containers log to the journal, which $LOG_SHIPPING_SERVICE sends to $LOG_SHIPPING_URL: the oldest line not taken yet is $(in_words "$age") old"
	else
		result pass "the containers log to the journal, which $LOG_SHIPPING_SERVICE sends to $LOG_SHIPPING_URL: all of it taken"
	fi
}

# last_words UNIT: "; its last line: ..." from a unit's journal (nothing when it has none).
last_words() {
	local line
	line=$(journalctl --no-pager -q -o cat -n 1 -u "$1" 2>/dev/null | cut -c1-200)
	[ -z "$line" ] || printf '; its last line: %s' "$line"
}

# Monitor disk space: / , Docker's data directory and the backups' directory.
check_disk() {
	local paths=(/) root path size avail mount free verdict worst=pass seen="" report=""
	root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null) && [ -n "$root" ] && paths+=("$root")
	[ -d "$BACKUP_DIR" ] && paths+=("$BACKUP_DIR")
	for path in "${paths[@]}"; do
		read -r size avail mount < <(df -P -B1 "$path" 2>/dev/null | awk 'NR == 2 {print $2, $4, $6}')
		[ -n "${size:-}" ] && [ "$size" -gt 0 ] || continue
		case " $seen " in *" $mount "*) continue ;; esac
		seen+=" $mount"
		free=$((avail * 100 / size))
		verdict=$(judge_free_percent "$free" "$DISK_WARN_PERCENT" "$DISK_FAIL_PERCENT")
		report+="${report:+; }$path: $free% free ($(numfmt --to=iec "$avail") of $(numfmt --to=iec "$size"))"
		case $verdict:$worst in fail:* | warn:pass) worst=$verdict ;; esac
	done
	if [ -z "$report" ]; then
		result cannot-check "df answered for none of ${paths[*]}"
	elif [ "$worst" = pass ]; then
		result pass "$report"
	else
		result "$worst" "$report (warn under $DISK_WARN_PERCENT% free, fail under $DISK_FAIL_PERCENT%: prune old images and logs, or grow the disk)"
	fi
}

# Keep Docker images updated: the age of the images the stack runs.
check_images() {
	local id name image created age oldest=0 oldest_name="" now
	now=$(date +%s)
	for id in $(project_containers running); do
		read -r name image < <(docker inspect --format '{{.Name}} {{.Config.Image}}' "$id" 2>/dev/null)
		created=$(docker image inspect --format '{{.Created}}' "$(docker inspect --format '{{.Image}}' "$id")" 2>/dev/null)
		age=$((now - $(epoch "$created")))
		if [ "$age" -gt "$oldest" ]; then
			oldest=$age
			oldest_name="$image (${name#/})"
		fi
	done
	if [ -z "$oldest_name" ]; then
		result cannot-check "no container of the stack is running"
	elif [ "$oldest" -gt $((IMAGE_MAX_AGE_DAYS * 86400)) ]; then
		result warn "$oldest_name was built $(in_words "$oldest") ago, more than $IMAGE_MAX_AGE_DAYS days: pull newer base images and deploy"
	else
		result pass "every image in use was built within $IMAGE_MAX_AGE_DAYS days; the oldest, $oldest_name, $(in_words "$oldest") ago"
	fi
}

# Review and rotate passwords periodically: when the deploy last set each one.
check_password_age() {
	local name when age report="" stale="" unknown=""
	for name in POSTGRES_PASSWORD POSTGRES_APP_PASSWORD; do
		when=$(sed -n "s/^ *\"$name\": *\"\([^\"]*\)\".*/\1/p" "$SECRETS_RECORD" 2>/dev/null)
		if [ -z "$when" ] || [ -z "$(epoch "$when")" ]; then
			unknown+="${unknown:+, }$name"
			continue
		fi
		age=$(($(date +%s) - $(epoch "$when")))
		report+="${report:+, }$name set $(in_words "$age") ago"
		[ "$age" -gt $((PASSWORD_MAX_AGE_DAYS * 86400)) ] && stale+="${stale:+, }$name"
	done
	if [ -n "$unknown" ]; then
		result warn "no record of when $unknown was set (the deploy records every change it makes from now on)${report:+; $report}"
	elif [ -n "$stale" ]; then
		result warn "$report: rotate $stale (older than $PASSWORD_MAX_AGE_DAYS days: export a new one and deploy)"
	else
		result pass "$report (rotate past $PASSWORD_MAX_AGE_DAYS days)"
	fi
}
