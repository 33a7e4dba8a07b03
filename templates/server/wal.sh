# Functions of point-in-time recovery: the WAL archive, base backups and recovery into a
# scratch database (sourced after lib.sh, backup.sh and scratch.sh, not run).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.
#
# The archive is $WAL_DIR/<system identifier>/ (the host's backup_dir/wal), mounted into
# the db container at $WAL_MOUNT (deploy.env):
#   wal/<segment>.gz       each completed WAL segment, gzipped (archive-wal.sh)
#   base/<UTC time>/       a base backup (pg_basebackup -Ft -z -X none): base.tar.gz,
#                          backup_manifest, and manifest.json (its start segment, the
#                          time from which it can recover, sizes and sha256)
#   window.json            the recoverable window, as of the last base backup or shipment
# A point in time is recovered by restoring the newest base backup that ends before it
# and replaying the archived segments up to it.

WAL_RESTORE_MOUNT=/srq-hpn-wal-restore
WAL_SEGMENT_RE='^[0-9A-F]{24}$'

# live_system_id CONTAINER: the database system identifier of the running cluster.
live_system_id() {
	docker exec "$1" psql -X -qAt --username "$DB_USER" --dbname "$DB_NAME" \
		-c "SELECT system_identifier FROM pg_control_system()"
}

# list_bases DIR: the complete base backups of cluster directory DIR, oldest first.
list_bases() {
	local path
	for path in "$1"/base/*/manifest.json; do
		[ -f "$path" ] || continue
		path=${path%/manifest.json}
		echo "${path##*/}"
	done | LC_ALL=C sort
}

# segment_number NAME: the position of a WAL segment on its timeline (16 MB segments).
segment_number() { echo $((16#${1:8:8} * 256 + 16#${1:16:8})); }

# segment_name TIMELINE NUMBER: the segment's file name.
segment_name() { printf '%s%08X%08X\n' "$1" $(($2 / 256)) $(($2 % 256)); }

# archived_segments DIR TIMELINE: the numbers of the segments of TIMELINE archived in
# cluster directory DIR, ascending.
archived_segments() {
	local file name
	for file in "$1"/wal/"$2"*.gz; do
		[ -f "$file" ] || continue
		name=${file##*/}
		name=${name%.gz}
		[[ $name =~ $WAL_SEGMENT_RE ]] && segment_number "$name"
	done | sort -n
}

# first_missing_segment DIR TIMELINE START: the name of the first segment missing from
# the archive after segment START (a name), up to its newest one; nothing when none is.
first_missing_segment() {
	local expected number
	expected=$(segment_number "$3")
	while read -r number; do
		[ "$number" -lt "$expected" ] && continue
		if [ "$number" -gt "$expected" ]; then
			segment_name "$2" "$expected"
			return 0
		fi
		expected=$((number + 1))
	done < <(archived_segments "$1" "$2")
	# The start segment itself may be missing when nothing at all follows it.
	if [ "$expected" = "$(segment_number "$3")" ]; then
		echo "$3"
	fi
}

# iso_time EPOCH: UTC, as the settings and records write times.
iso_time() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# newest_segment_epoch DIR: when the newest segment of cluster directory DIR was archived
# (its file's time), or nothing.
newest_segment_epoch() {
	find "$1/wal" -maxdepth 1 -name '*.gz' -printf '%T@\n' 2>/dev/null | sort -n | tail -n 1 | cut -d. -f1
}

# window_json DIR: the recoverable window of cluster directory DIR: {"system_identifier",
# "earliest", "latest", "bases", "segments", "bytes", "missing"} (earliest: the end of its
# oldest base backup; latest: when its newest segment was archived; missing: the first
# segment missing after the oldest base backup's start, if any).
window_json() {
	local dir=$1 oldest newest_epoch missing="" latest="" start
	oldest=$(list_bases "$dir" | head -n 1)
	newest_epoch=$(newest_segment_epoch "$dir")
	[ -z "$newest_epoch" ] || latest=$(iso_time "$newest_epoch")
	start=$([ -z "$oldest" ] || jq -r '.start_segment // empty' "$dir/base/$oldest/manifest.json")
	if [[ $start =~ $WAL_SEGMENT_RE ]]; then
		missing=$(first_missing_segment "$dir" "${start:0:8}" "$start")
	fi
	jq -n --arg id "${dir##*/}" --arg latest "$latest" --arg missing "$missing" \
		--argjson bases "$(for b in $(list_bases "$dir"); do jq -c '{name, end_time, bytes: ([.files[]?.bytes] | add // 0)}' "$dir/base/$b/manifest.json"; done | jq -s .)" \
		--argjson segments "$(find "$dir/wal" -maxdepth 1 -name '*.gz' 2>/dev/null | wc -l)" \
		--argjson bytes "$(du -sb "$dir" 2>/dev/null | cut -f1 || echo 0)" \
		'{system_identifier: $id, earliest: ($bases[0].end_time // null),
		  latest: (if $latest == "" then null else $latest end), bases: $bases, segments: $segments,
		  bytes: $bytes, missing: (if $missing == "" then null else $missing end)}'
}

# epoch_of TIME: seconds since the epoch of a UTC time (2026-03-01T02:00:00Z).
epoch_of() { date -u -d "$(printf '%s' "$1" | sed 's/T/ /; s/Z$//')" +%s; }

# base_for DIR EPOCH: the newest base backup of cluster directory DIR that ends at or
# before EPOCH (the one a recovery to that time starts from), or nothing.
base_for() {
	local base found=""
	for base in $(list_bases "$1"); do
		[ "$(epoch_of "$(jq -r .end_time "$1/base/$base/manifest.json")")" -le "$2" ] && found=$base
	done
	echo "$found"
}

# recover_start CONTAINER IMAGE DIR BASE TARGET DOCKER-RUN-OPTION...: start CONTAINER from
# IMAGE (no network) on a copy of base backup BASE of cluster directory DIR (mounted
# read-only), replaying the archived segments up to TARGET (a time; "end": all of them)
# and then ending recovery. Returns at once; recover_wait follows it.
recover_start() {
	local container=$1 image=$2 dir=$3 base=$4 target=$5 settings
	shift 5
	settings="restore_command = 'gzip -dc $WAL_RESTORE_MOUNT/wal/%f.gz > %p'"
	if [ "$target" != end ]; then
		settings="$settings
recovery_target_time = '$(printf '%s' "$target" | sed 's/T/ /; s/Z$/+00/')'
recovery_target_action = 'promote'"
	fi
	docker run -d --name "$container" --network none --user postgres "$@" \
		-v "$dir:$WAL_RESTORE_MOUNT:ro" --entrypoint sh "$image" -c '
			set -e
			cd "$PGDATA"
			tar -xzf "$1"
			rm -f postmaster.pid
			printf "%s\n" "$2" >>postgresql.auto.conf
			touch recovery.signal
			exec postgres -c listen_addresses= -c archive_mode=off -c hot_standby=on' \
		recover "$WAL_RESTORE_MOUNT/base/$base/base.tar.gz" "$settings" >/dev/null
}

# recover_wait CONTAINER: waits until CONTAINER's recovery ends (at most an hour). Prints
# "recovered", or "ended-before-target" (the archive holds no transaction after the target:
# PostgreSQL stops), or "failed"; its log says the rest.
recover_wait() {
	local container=$1 waited=0 answer
	while [ "$waited" -lt 3600 ]; do
		if ! is_running "$container"; then
			if docker logs "$container" 2>&1 | grep -q 'recovery ended before configured recovery target was reached'; then
				echo ended-before-target
			else
				echo failed
			fi
			return 0
		fi
		answer=$(docker exec "$container" psql -X -qAt --username "$DB_USER" --dbname postgres \
			-c "SELECT pg_is_in_recovery()" 2>/dev/null || true)
		if [ "$answer" = f ]; then
			echo recovered
			return 0
		fi
		sleep 0.5
		waited=$((waited + 1))
	done
	echo failed
}

# recovery_times CONTAINER: what PostgreSQL said of the recovery, as two lines
# "last <time>" (the last transaction replayed) and "stop <time>" (the first one not
# replayed, past the target), each only when it said so.
recovery_times() {
	docker logs "$1" 2>&1 | sed -n \
		-e 's/.*last completed transaction was at log time \(.*\)$/last \1/p' \
		-e 's/.*recovery stopping before commit of transaction [0-9]*, time \(.*\)$/stop \1/p' |
		tail -n 2
}

# to_utc TIME: a time PostgreSQL printed (2026-03-01 02:00:00.123456+00), as UTC to the
# microsecond, sortable (2026-03-01T02:00:00.123456Z).
to_utc() { date -u -d "$1" +%Y-%m-%dT%H:%M:%S.%6NZ; }

# recover_to CONTAINER IMAGE DIR TARGET DOCKER-RUN-OPTION...: the cluster archived in DIR
# recovered to TARGET (a UTC time; "latest": all of its archive, from its newest base
# backup) in CONTAINER (left running, for the caller to read and remove); sets
# recovered_base, recovered_last (the last transaction replayed), recovered_stop (the
# first one not replayed, when PostgreSQL stopped at the target) and recovered_to
# ("target"; or "end": the archive holds nothing after the target, so all of it was
# replayed). Returns 1 with recover_error naming the cause when it cannot be done.
# shellcheck disable=SC2034 # its results are read by the caller
recover_to() {
	local container=$1 image=$2 dir=$3 target=$4 base missing window outcome latest problems times
	shift 4
	recovered_base="" recovered_last="" recovered_stop="" recovered_to="" recover_error=""
	window=$(window_json "$dir")
	if [ "$target" = latest ]; then
		base=$(list_bases "$dir" | tail -n 1)
		[ -n "$base" ] || {
			recover_error="cluster ${dir##*/}'s archive has no base backup to recover from"
			return 1
		}
		target=end
	else
		base=$(base_for "$dir" "$(epoch_of "$target")")
	fi
	if [ -z "$base" ]; then
		recover_error="$target is before the recoverable window of cluster ${dir##*/} (earliest: $(printf '%s' "$window" | jq -r '.earliest // "none, it has no base backup"'))"
		return 1
	fi
	latest=$(printf '%s' "$window" | jq -r '.latest // empty')
	if [ "$target" != end ] && { [ -z "$latest" ] || [ "$(epoch_of "$target")" -gt "$(epoch_of "$latest")" ]; }; then
		recover_error="$target is after the recoverable window of cluster ${dir##*/} (latest: ${latest:-none}, when its newest segment was archived)"
		return 1
	fi
	problems=$(backup_file_problems "$dir/base/$base")
	if [ -n "$problems" ]; then
		recover_error="base backup $base: $(printf '%s' "$problems" | paste -sd ';' | sed 's/;/; /g')"
		return 1
	fi
	missing=$(first_missing_segment "$dir" "$(jq -r .timeline_id "$dir/base/$base/manifest.json")" \
		"$(jq -r .start_segment "$dir/base/$base/manifest.json")")
	recovered_base=$base recovered_to=$([ "$target" = end ] && echo end || echo target)
	recover_start "$container" "$image" "$dir" "$base" "$target" "$@" || {
		recover_error="the recovery container of image $image did not start"
		return 1
	}
	outcome=$(recover_wait "$container")
	if [ "$outcome" = ended-before-target ] && [ -z "$missing" ]; then
		# Nothing archived after the target: every archived transaction is before it.
		docker rm -f -v "$container" >/dev/null 2>&1
		recovered_to=end
		recover_start "$container" "$image" "$dir" "$base" end "$@" || {
			recover_error="the recovery container of image $image did not start"
			return 1
		}
		outcome=$(recover_wait "$container")
	fi
	if [ "$outcome" != recovered ]; then
		log_tail "$container" 12 >&2
		if [ -n "$missing" ]; then
			recover_error="WAL segment $missing is missing from the archive of cluster ${dir##*/}: the recovery from base backup $base stops before it, short of $target"
		else
			recover_error="the recovery to $target from base backup $base did not finish (PostgreSQL's last lines above)"
		fi
		return 1
	fi
	times=$(recovery_times "$container")
	recovered_last=$(printf '%s\n' "$times" | sed -n 's/^last //p')
	recovered_stop=$(printf '%s\n' "$times" | sed -n 's/^stop //p')
}
