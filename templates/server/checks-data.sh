# Checks of the guide's "Database" items (sourced by checks.sh).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.

# Tested migrations before deploying: the last migration's record (srq-hpn-migrate), which
# says whether it ran first on a copy of production (the migration rehearsal), or that it
# was interrupted, or never finished (still "in-progress" while no such program runs).
check_migrations() {
	local fields outcome rehearsal from to why backup copy cause phase pid boot age off="" verdict where then="deploy again"
	[ "${MIGRATION_REHEARSAL:-on}" = on ] || off="migration rehearsal is off (srq_hpn_migration_rehearsal = False): the next migration runs on production untested"
	if [ ! -f "$MIGRATION_RECORD" ]; then
		if [ -n "$off" ]; then
			result warn "$off; no migration recorded on this server yet"
		else
			result not-set-up "no migration recorded on this server yet ($MIGRATION_RECORD); each one is rehearsed on a copy of production first"
		fi
		return
	fi
	fields=$(jq -r '[.result, .rehearsal.result, .from, .to, .rehearsal.why // "", .rehearsal.backup // "",
		(.rehearsal.duration_s // "" | tostring), .cause // "", .phase // "", (.pid // "" | tostring),
		.boot // ""] | join("\u001f")' "$MIGRATION_RECORD") || {
		result cannot-check "$MIGRATION_RECORD cannot be read"
		return
	}
	IFS=$'\x1f' read -r outcome rehearsal from to why backup copy cause phase pid boot <<<"$fields"
	age=$(in_words $(($(date +%s) - $(stat -c %Y "$MIGRATION_RECORD"))))
	# Interrupted or killed during the rehearsal, production is untouched: a warn; on production, a fail.
	verdict=warn where="during its rehearsal on a copy of production (production's database untouched)"
	[ "$phase" = rehearsal ] || verdict=fail where="while it ran on production (its database may be at either revision)"
	# Killed while alembic went on to the end (only srq-hpn-migrate killed): no migration is
	# left for a deploy to run, and production's database says so.
	if [ "$verdict" = fail ] && { [ "$outcome" = in-progress ] || [ "$outcome" = interrupted ]; } &&
		[ "$(live_revisions)" = "$to" ]; then
		verdict=warn then="the next migration's record replaces this one"
		where="while it ran on production, though production's database is at $to now: alembic ended there"
	fi
	if [ "$outcome" = in-progress ] && [ "$boot" = "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" ] &&
		[[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q srq-hpn-migrate; then
		result warn "a migration, $from -> $to, is running now (process $pid, in its ${phase:-migration} phase since $age ago): check again once it has ended"
	elif [ "$outcome" = in-progress ]; then
		result "$verdict" "the last migration tried, $from -> $to, started $age ago, never finished: srq-hpn-migrate was killed, or the server stopped, $where; $then; see $MIGRATION_RECORD"
	elif [ "$outcome" = interrupted ]; then
		result "$verdict" "the last migration tried, $from -> $to, $age ago, was interrupted: ${cause:-no cause recorded}$([ "$verdict" != warn ] || [ "$phase" = rehearsal ] || echo ", though production's database is at $to now: alembic ended there"); $then; see $MIGRATION_RECORD"
	elif [ "$outcome" = failed ]; then
		result fail "the last migration, $from -> $to, $age ago, failed on production$([ "$rehearsal" = passed ] && echo " after passing its rehearsal on a copy of $backup"): see $MIGRATION_RECORD and deploy again once it is fixed"
	elif [ -n "$off" ]; then
		result warn "$off; the last migration, $from -> $to, $age ago: $outcome"
	elif [ "$outcome" = stopped ]; then
		result warn "the last migration tried, $from -> $to, $age ago, did not pass its rehearsal on a copy of production and was not deployed (production untouched): fix it and deploy again; see $MIGRATION_RECORD"
	elif [ "$outcome" = migrated ] && [ "$rehearsal" = passed ]; then
		result pass "the last migration deployed, $from -> $to, $age ago, was rehearsed first on a copy of production (backup $backup): ${copy}s there"
	elif [ "$outcome" = migrated ] && [ "$rehearsal" = not-needed ]; then
		result pass "the last migration deployed, to $to, $age ago, ran on an empty database: nothing to rehearse on"
	elif [ "$outcome" = migrated ]; then
		result warn "the last migration deployed, $from -> $to, $age ago, was not rehearsed on a copy of production first (${why:-no reason recorded})"
	else
		result cannot-check "the last migration's record says $outcome: see $MIGRATION_RECORD"
	fi
}

# Database initialized with the app user: the limited role exists, with row
# privileges only (the same check the deploy makes before it repairs a difference).
check_app_role() {
	local drift role
	if ! external_db && ! service_running "$DB_SERVICE"; then
		result cannot-check "the database is not running (see the containers line)"
		return
	fi
	role=$(env_value POSTGRES_APP_USER)
	if ! drift=$("$CHECKS_DIR/srq-hpn-app-role" check 2>&1); then
		result cannot-check "the role could not be checked: $(tail -n 1 <<<"$drift")"
		return
	fi
	if [ -n "$drift" ]; then
		result fail "$(words <<<"$drift") (the next deploy repairs it)"
	else
		result pass "role ${role:-of the api} logs in with POSTGRES_APP_PASSWORD; not a superuser, a member of no role, owns nothing, cannot create roles, databases, schemas or tables; row privileges (SELECT, INSERT, UPDATE, DELETE) on every table"
	fi
}

# Set up automated backups: the backup timer, its last run, the newest backup's age.
# Reads whatever this server has: no timer means backups are not set up here.
check_backups() {
	local service state outcome newest age next
	state=$(timer_state "$BACKUP_TIMER")
	case $state in
	missing)
		result not-set-up "no $BACKUP_TIMER on this server: no automated backups"
		return
		;;
	ok) ;;
	*)
		result fail "$BACKUP_TIMER is $state: no backup will run (systemctl enable --now $BACKUP_TIMER)"
		return
		;;
	esac
	service=${BACKUP_TIMER%.timer}.service
	outcome=$(systemctl show --value --property Result "$service" 2>/dev/null)
	next=$(systemctl show --value --property NextElapseUSecRealtime "$BACKUP_TIMER" 2>/dev/null)
	# A complete backup: a directory of the deploy's name holding its manifest (written last).
	newest=$(find "$BACKUP_DIR" -mindepth 2 -maxdepth 2 -type f -path "$BACKUP_DIR/$BACKUP_PREFIX*/$BACKUP_FILES" \
		-printf '%T@ %h\n' 2>/dev/null | sort -n | tail -n 1)
	if [ -n "$outcome" ] && [ "$outcome" != success ]; then
		result fail "the last run of $service failed ($outcome): journalctl -u $service"
	elif [ -z "$newest" ]; then
		result warn "$BACKUP_TIMER is enabled (next run: ${next:-unknown}); no backup in $BACKUP_DIR yet"
	else
		age=$(($(date +%s) - ${newest%%.*}))
		if [ "$age" -gt $((BACKUP_MAX_AGE_HOURS * 3600)) ]; then
			result fail "the newest backup, $(basename "${newest#* }"), is $(in_words "$age") old (more than $BACKUP_MAX_AGE_HOURS h): the timer runs, but no new backup is written"
		else
			result pass "$BACKUP_TIMER enabled (next run: ${next:-unknown}); newest backup $(basename "${newest#* }"), $(in_words "$age") old"
		fi
	fi
}

# Point-in-time recovery: the database archives its WAL into $WAL_DIR and the archive
# stays writable (pg_stat_archiver: no failure since the last success), its cluster has a
# base backup, and with the off-server copy the archive's copy keeps up.
check_wal_archive() {
	local container stats mode last_ok last_failed failed_wal id dir bases newest earliest latest shipped age
	if [ "${WAL_ARCHIVE:-0}" != 1 ]; then
		result not-set-up "backup_wal_archive is off: the database can go back to its backups' times only"
		return
	fi
	container=$(service_container "$DB_SERVICE")
	if ! is_running "$container"; then
		result fail "the database container is not running: nothing is archived"
		return
	fi
	stats=$(docker exec "$container" psql -X -qAt -F $'\t' --username "$DB_USER" --dbname "$DB_NAME" -c \
		"SELECT current_setting('archive_mode'), coalesce(extract(epoch FROM last_archived_time)::bigint, 0),
		        coalesce(extract(epoch FROM last_failed_time)::bigint, 0), coalesce(last_failed_wal, '-'), system_identifier
		 FROM pg_stat_archiver, pg_control_system()" 2>&1) || {
		result cannot-check "the database does not answer: $(printf '%s' "$stats" | tail -n 1)"
		return
	}
	IFS=$'\t' read -r mode last_ok last_failed failed_wal id <<<"$stats"
	if [ "$mode" != on ]; then
		result fail "the database does not archive its WAL (archive_mode is $mode): deploy to turn it on"
		return
	fi
	dir="$WAL_DIR/$id"
	if ! docker exec -u postgres "$container" sh -c "test -w $WAL_MOUNT && { test ! -e $WAL_MOUNT/$id/wal || test -w $WAL_MOUNT/$id/wal; }" 2>/dev/null; then
		result fail "the database cannot write into its archive $dir (the WAL piles up in its volume until the disk is full): check its owner and mode (srq-hpn-wal setup makes it the database's)"
		return
	fi
	if [ "$last_failed" -gt "$last_ok" ]; then
		result fail "archiving fails since $(date -u -d "@$last_failed" +%Y-%m-%dT%H:%M:%SZ): segment $failed_wal could not be archived into $dir (docker logs $(container_name "$container")); the WAL piles up in the database's volume"
		return
	fi
	bases=$(find "$dir/base" -mindepth 2 -maxdepth 2 -name manifest.json 2>/dev/null | wc -l)
	if [ "$bases" = 0 ]; then
		result fail "no base backup of the database's cluster ($id) in $dir/base: nothing to recover from (systemctl start srq-hpn-backup takes one)"
		return
	fi
	earliest=$(find "$dir/base" -mindepth 2 -maxdepth 2 -name manifest.json -exec jq -r .end_time {} + 2>/dev/null | sort | head -n 1)
	newest=$(find "$dir/wal" -maxdepth 1 -name '*.gz' -printf '%T@\n' 2>/dev/null | sort -n | tail -n 1)
	newest=${newest%.*}
	latest=$([ -z "$newest" ] || date -u -d "@$newest" +%Y-%m-%dT%H:%M:%SZ)
	if [ -z "$latest" ] || [[ $earliest > $latest ]]; then latest=$earliest; fi
	if [ -n "$OFFSITE_REPOSITORY" ] && [ -n "$newest" ]; then
		shipped=$(head -n 1 "$WAL_SHIPPED" 2>/dev/null || true)
		shipped=$(epoch "$shipped" || true)
		if [ -z "$shipped" ] || [ $((newest - shipped)) -gt "$WAL_SHIP_MAX_DELAY" ]; then
			result fail "the archive's copy off the server is behind: its newest segment is from $(date -u -d "@$newest" +%Y-%m-%dT%H:%M:%SZ), last copied ${shipped:+$(date -u -d "@$shipped" +%Y-%m-%dT%H:%M:%SZ)}${shipped:-never} (journalctl -u srq-hpn-wal-ship)"
			return
		fi
	fi
	age=""
	[ "$last_ok" = 0 ] || age=", the last segment archived $(in_words $(($(date +%s) - last_ok))) ago"
	result pass "the database archives its WAL into $dir within ${WAL_TIMEOUT}s of a commit$age; recoverable from $earliest to $latest ($bases base $([ "$bases" = 1 ] && echo backup || echo backups))${OFFSITE_REPOSITORY:+, copied off the server}"
}

# Tested restoring from backup (quarterly): the last restore drill's record.
check_restore_drill() {
	local age
	if [ ! -f "$DRILL_RECORD" ]; then
		result not-set-up "no restore drill recorded on this server ($DRILL_RECORD)"
		return
	fi
	age=$(($(date +%s) - $(stat -c %Y "$DRILL_RECORD")))
	if grep -Eq '"result"[[:space:]]*:[[:space:]]*"failed"' "$DRILL_RECORD"; then
		result fail "the last restore drill, $(in_words "$age") ago, failed: see $DRILL_RECORD"
	elif [ "$age" -gt $((DRILL_MAX_AGE_DAYS * 86400)) ]; then
		result warn "the last restore drill passed $(in_words "$age") ago: more than $DRILL_MAX_AGE_DAYS days (test restoring quarterly)"
	else
		result pass "the last restore drill passed $(in_words "$age") ago"
	fi
}
