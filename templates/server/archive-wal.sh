# archive-wal.sh PATH NAME: the database's archive_command (archive_command = 'sh
# /srq-hpn-lib/archive-wal.sh %p %f', set by the deploy's compose layer).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.
#
# Runs inside the db container, as postgres, in the data directory (POSIX sh: the
# image may be Debian's or Alpine's). Each completed WAL segment (or timeline history
# file) is written, gzipped, to /srq-hpn-wal/<system identifier>/wal/NAME.gz (the host's
# backup_dir/wal), under a temporary name first: a file with a segment's name is
# complete. The system identifier keeps clusters apart (a new volume is a new cluster,
# whose segment names start again). A segment archived already is accepted only when its
# contents are the same; anything else fails, so PostgreSQL keeps the segment and tries
# again, pg_stat_archiver counts the failure, and the checklist's wal_archive item fails.
set -eu
id=$(pg_controldata . | sed -n 's/^Database system identifier:[[:space:]]*//p')
if [ -z "$id" ]; then
	echo "archive-wal: cannot read the database's system identifier (pg_controldata)" >&2
	exit 1
fi
dir=/srq-hpn-wal/$id/wal
[ -d "$dir" ] || mkdir -p "$dir"
if [ -f "$dir/$2.gz" ]; then
	if gzip -dc "$dir/$2.gz" | cmp -s - "$1"; then
		exit 0
	fi
	echo "archive-wal: $dir/$2.gz exists with other contents; it is not overwritten" >&2
	exit 1
fi
gzip -c "$1" >"$dir/.$2.gz.part"
mv "$dir/.$2.gz.part" "$dir/$2.gz"
