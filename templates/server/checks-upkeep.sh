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
