#!/usr/bin/env bash
# Makes sure a Docker daemon answers: if none does and dockerd is installed
# (Debian: apt-get install docker.io), starts one as root in the background,
# left running for later runs. It gets no default bridge network: containers
# run with --network host (loopback) or --network none. Log: <cache>/dockerd.log.
set -euo pipefail

if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null; then
  echo "docker: no daemon answers and dockerd is not installed (Debian: apt-get install docker.io)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "docker: no daemon answers; starting dockerd needs root" >&2
  exit 1
fi
log="$("$(dirname "$0")/cache-dir.sh")/dockerd.log"
mkdir -p "$(dirname "$log")"
echo "docker: starting dockerd in the background (log: $log)"
setsid nohup dockerd --storage-driver=overlay2 --bridge=none --iptables=false >>"$log" 2>&1 </dev/null &
for _ in $(seq 1 150); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.2
done
echo "docker: dockerd did not answer within 30s; last lines of $log:" >&2
tail -20 "$log" >&2
exit 1
