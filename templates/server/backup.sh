# Functions of the backup programs (sourced after lib.sh, not run).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.
#
# A backup is a directory $BACKUP_DIR/srq-hpn-<UTC time>[-<label>] (0700) holding
#   db.dump        pg_dump --format=custom of the database
#   globals.sql    pg_dumpall --globals-only --no-role-passwords (the roles)
#   manifest.json  time, sizes, sha256, alembic revision, rows of every table,
#                  all read from the dump itself (so they describe its snapshot)
# written under a temporary name and renamed once verified: a directory with a
# backup's name and a manifest is complete. Only such directories are ever pruned.

BACKUP_NAME_RE='^srq-hpn-[0-9]{8}T[0-9]{6}Z(-[A-Za-z0-9._+-]{1,80})?$'

is_backup_name() { [[ $1 =~ $BACKUP_NAME_RE ]]; }

# The length of a backup's name without a label (srq-hpn-YYYYMMDDTHHMMSSZ): its time
# stamp, which sorts as the time does; a longer name carries a label.
STAMPED_NAME_LENGTH=24

# backup_name [LABEL]: a new backup's name, from the current UTC time.
backup_name() {
	local name
	name="srq-hpn-$(date -u +%Y%m%dT%H%M%SZ)"
	if [ -n "${1:-}" ]; then
		name="$name-$1"
	fi
	echo "$name"
}

# backup_epoch NAME: the time in a backup's name, in seconds since the epoch.
backup_epoch() {
	local stamp=${1#srq-hpn-}
	stamp=${stamp:0:16}
	date -u -d "${stamp:0:4}-${stamp:4:2}-${stamp:6:2} ${stamp:9:2}:${stamp:11:2}:${stamp:13:2}" +%s
}

# list_backups DIR: the complete backups in DIR, oldest first (names sort by time).
list_backups() {
	local path name
	for path in "$1"/srq-hpn-*; do
		name=${path##*/}
		if is_backup_name "$name" && [ -d "$path" ] && [ -f "$path/manifest.json" ]; then
			echo "$name"
		fi
	done | LC_ALL=C sort
}

# retention_plan DIR DAILY WEEKLY MONTHLY [NOW]: "keep NAME WHY" or "remove NAME" for
# each complete backup of DIR, newest first. As restic's --keep-daily/weekly/monthly:
# the newest backup of each of the last N days (weeks, months) that have one. The
# newest backup is always kept, and so is a labelled one (taken before a migration or
# a restore) for DAILY days after it was taken (NOW: seconds since the epoch).
retention_plan() {
	local dir=$1 daily=$2 weekly=$3 monthly=$4 now=${5:-$(date -u +%s)}
	local -a names
	mapfile -t names < <(list_backups "$dir" | LC_ALL=C sort -r)
	local name epoch day week month
	local -a why
	local last_day="" last_week="" last_month="" days=0 weeks=0 months=0 first=1
	for name in "${names[@]}"; do
		epoch=$(backup_epoch "$name")
		day=$(date -u -d "@$epoch" +%F)
		week=$(date -u -d "@$epoch" +%G-W%V)
		month=$(date -u -d "@$epoch" +%Y-%m)
		why=()
		if [ "$first" = 1 ]; then
			why+=(newest)
			first=0
		fi
		if [ "$days" -lt "$daily" ] && [ "$day" != "$last_day" ]; then
			why+=(daily)
			days=$((days + 1))
			last_day=$day
		fi
		if [ "$weeks" -lt "$weekly" ] && [ "$week" != "$last_week" ]; then
			why+=(weekly)
			weeks=$((weeks + 1))
			last_week=$week
		fi
		if [ "$months" -lt "$monthly" ] && [ "$month" != "$last_month" ]; then
			why+=(monthly)
			months=$((months + 1))
			last_month=$month
		fi
		if [ "${#name}" -gt "$STAMPED_NAME_LENGTH" ] && [ $((now - epoch)) -lt $((daily * 86400)) ]; then
			why+=(labelled)
		fi
		if [ ${#why[@]} -gt 0 ]; then
			echo "keep $name $(IFS=,; echo "${why[*]}")"
		else
			echo "remove $name"
		fi
	done
}

# prune DIR DAILY WEEKLY MONTHLY [NOW]: remove the complete backups the plan does not keep,
# and temporary directories left by runs that died (the caller holds the backup lock).
prune() {
	local dir=$1 action name _why
	while read -r action name _why; do
		if [ "$action" = remove ]; then
			rm -rf -- "${dir:?}/$name"
			say "removed $name (retention: $2 daily, $3 weekly, $4 monthly)"
		fi
	done < <(retention_plan "$@")
	for name in "$dir"/.incomplete-srq-hpn-*; do
		if [ -d "$name" ]; then
			rm -rf -- "$name"
			say "removed ${name##*/} (left by a run that did not finish)"
		fi
	done
}

# dump_contents: reads `pg_restore --data-only --file -` and prints, from the dump's
# own data, "table<TAB>NAME<TAB>ROWS" for every table and "revision<TAB>REV" for each
# row of an alembic_version table. COPY escapes newlines in values: one row, one line.
dump_contents() {
	awk '
		BEGIN { inside = 0 }
		!inside && /^COPY .* FROM stdin;$/ {
			name = substr($0, 6)
			sub(/ FROM stdin;$/, "", name)
			sub(/ \(.*\)$/, "", name)
			rows = 0
			inside = 1
			alembic = (name ~ /(^|\.)"?alembic_version"?$/)
			next
		}
		inside && $0 == "\\." {
			printf "table\t%s\t%d\n", name, rows
			inside = 0
			next
		}
		inside {
			rows++
			if (alembic) printf "revision\t%s\n", $1
		}
		END { if (inside) exit 3 }
	'
}

# contents_json: dump_contents' lines as {"tables": {...}, "alembic_revision": [...]}.
contents_json() {
	jq -R -n '[inputs | split("\t")] as $rows | {
		tables: ([$rows[] | select(.[0] == "table") | {(.[1]): (.[2] | tonumber)}] | add // {}),
		alembic_revision: [$rows[] | select(.[0] == "revision") | .[1]] | sort
	}'
}

# file_json DIR FILE...: {"FILE": {"bytes": N, "sha256": "..."}, ...}
file_json() {
	local dir=$1 file
	shift
	for file in "$@"; do
		jq -n --arg name "$file" --argjson bytes "$(stat -c %s "$dir/$file")" \
			--arg sha256 "$(sha256sum "$dir/$file" | cut -c1-64)" '{($name): {bytes: $bytes, sha256: $sha256}}'
	done | jq -s 'add'
}

# backup_file_problems DIR: the backup's files against its manifest. Prints one line per
# problem (a missing, truncated or corrupted file); nothing when all match.
backup_file_problems() {
	local dir=$1 file bytes sha256 size
	if ! jq -e '.files | type == "object"' "$dir/manifest.json" >/dev/null 2>&1; then
		echo "manifest.json is missing or unreadable"
		return
	fi
	while read -r file bytes sha256; do
		if [ ! -f "$dir/$file" ]; then
			echo "$file is missing"
			continue
		fi
		size=$(stat -c %s "$dir/$file")
		if [ "$size" -lt "$bytes" ]; then
			echo "$file is truncated: $size bytes, the manifest says $bytes"
		elif [ "$size" -gt "$bytes" ]; then
			echo "$file is corrupted: $size bytes, the manifest says $bytes"
		elif [ "$(sha256sum "$dir/$file" | cut -c1-64)" != "$sha256" ]; then
			echo "$file is corrupted: its sha256 differs from the manifest's"
		fi
	done < <(jq -r '.files | to_entries[] | "\(.key) \(.value.bytes) \(.value.sha256)"' "$dir/manifest.json")
}

# wait_for_database SECONDS: prints the database service's container once it runs and
# accepts connections (lib.sh's probe), waiting at most SECONDS for it (after a reboot,
# the timer's missed run may start before Docker has started it); returns 1 when it
# did not, printing nothing.
wait_for_database() {
	local deadline=$((SECONDS + $1)) container said=""
	while true; do
		container=$(service_container "$DB_SERVICE" 2>/dev/null) || container=""
		if is_running "$container" && probe "$container" "$DB_SERVICE"; then
			echo "$container"
			return 0
		fi
		[ "$SECONDS" -lt "$deadline" ] || return 1
		if [ -z "$said" ]; then
			say "waiting for the database container (up to ${1}s): it is not running or does not accept connections yet" >&2
			said=1
		fi
		sleep 1
	done
}

# take_backup_lock: one backup, restore or drill at a time; waits for the other one.
take_backup_lock() {
	if [ -n "${SRQ_HPN_BACKUP_LOCK_HELD:-}" ]; then
		return 0
	fi
	exec 9>"$BACKUP_DIR/.lock"
	if ! flock -w 3600 9; then
		die "another backup, restore or drill has held $BACKUP_DIR/.lock for an hour; nothing was done.
hint: see systemctl status $(basename "$0") and ps -ef | grep srq-hpn-"
	fi
	export SRQ_HPN_BACKUP_LOCK_HELD=1
}

# roles_missing_only CONTAINER: reads pg_dumpall --globals-only on stdin and prints it
# without the CREATE ROLE lines of roles that CONTAINER's server already has (so that
# the rest applies with ON_ERROR_STOP, and existing roles keep their passwords), nor the
# attributes of $DB_USER, that server's own superuser (a managed database's admin is none:
# NOSUPERUSER cannot apply to the bootstrap superuser of a scratch copy); memberships are
# granted by the role that applies them (a managed database's grantor is its provider's role).
roles_missing_only() {
	local existing
	existing=$(docker exec "$1" psql -X -tA --username "$DB_USER" --dbname postgres \
		-c "SELECT 'CREATE ROLE ' || quote_ident(rolname) || ';' FROM pg_roles")
	grep -vxF -f <(printf '%s\n' "$existing") | grep -vE "^ALTER ROLE \"?$DB_USER\"? WITH " |
		sed -E '/^GRANT /s/ GRANTED BY [^;]+;$/;/' || true
}

# restic_repo ARGS...: restic on the off-server copy (password from its 0600 file,
# whatever the caller's environment says; SRQ_HPN_RESTIC_PASSWORD_FILE, set by
# srq-hpn-offsite only, tries a new password's file first).
restic_repo() {
	env -u RESTIC_PASSWORD -u RESTIC_PASSWORD_COMMAND \
		RESTIC_REPOSITORY="$OFFSITE_REPOSITORY" RESTIC_PASSWORD_FILE="${SRQ_HPN_RESTIC_PASSWORD_FILE:-$OFFSITE_PASSWORD_FILE}" \
		RESTIC_CACHE_DIR=/var/cache/srq-hpn-restic TZ=UTC \
		restic -o "sftp.command=ssh -F $OFFSITE_SSH_CONFIG $OFFSITE_SSH_HOST -s sftp" "$@"
}
