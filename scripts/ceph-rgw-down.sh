#!/usr/bin/env bash
# Stop the daemons started by ceph-rgw-up.sh, by the PIDs in $CEPH_DIR/run/*.pid (each one
# checked to be a Ceph daemon of this $CEPH_DIR first). Idempotent.
# `--purge` also deletes $CEPH_DIR (all data).
set -uo pipefail
CEPH_DIR=${CEPH_DIR:-/tmp/ownvault-ceph-rgw}
log() { echo "[ceph-rgw-down $(date +%T)] $*" >&2; }

# stop in reverse dependency order: gateways, osd, mon
RGWS=$(cd "$CEPH_DIR/run" 2>/dev/null && ls client.rgw.*.pid 2>/dev/null | sed 's/\.pid$//')
for name in $RGWS osd.0 mon.a; do
  pf=$CEPH_DIR/run/$name.pid
  [ -s "$pf" ] || continue
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    # make sure the pid really is a ceph daemon of ours (pid files can go stale)
    if tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | grep -q -- "$CEPH_DIR/ceph.conf"; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then log "$name did not exit, SIGKILL"; kill -KILL "$pid"; fi
    else
      log "pid $pid in $pf is not our $name; leaving it alone"
    fi
  fi
  rm -f "$pf"
done

if [ "${1:-}" = "--purge" ]; then
  log "purging $CEPH_DIR"
  rm -rf "$CEPH_DIR"
fi
