#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, and that debootstrap is present
# for building the testbed's base image. On a laptop with Docker running this does
# nothing; on a fresh CI machine (no systemd, no daemon) it installs Debian's
# docker.io and starts dockerd in the background.
set -euo pipefail

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "Installing ${need[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

log=/var/log/srq-hpn-testbed-dockerd.log
echo "Starting dockerd (log: $log)"
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "Docker engine is up: $(docker version --format '{{.Server.Version}}')"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer within 60 s; last log lines:" >&2
tail -n 30 "$log" >&2
exit 1
