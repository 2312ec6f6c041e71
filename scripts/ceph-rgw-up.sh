#!/usr/bin/env bash
# Bring up a single-host, no-systemd Ceph (Pacific 16.2, Debian 12 packages) on loopback:
# 1 mon + 1 OSD (bluestore on a sparse file, or memstore) + 1..8 radosgw (beast) processes
# on 127.0.0.1, and an S3 user with fixed test keys. The S3 provider's tests
# (tests/providers/ceph.py) and bench/s3.py use it; nothing here listens beyond 127.0.0.1.
# Idempotent: re-running checks what is up, starts what is not (e.g. a gateway that was
# killed to play an outage) and prints the environment again.
#
# Env knobs (all optional):
#   CEPH_DIR=/tmp/ownvault-ceph-rgw  all state, config, logs, pid files, admin sockets
#   RGW_PORT=7480              first S3 endpoint port (127.0.0.1 only)
#   RGW_COUNT=1                number of radosgw processes (ports RGW_PORT..RGW_PORT+N-1, max 8),
#                              each separately killable (pid file $CEPH_DIR/run/client.rgw.<id>.pid)
#   MON_PORT=3300              mon msgr2 port; daemons bind MON_PORT+100..MON_PORT+400
#   OSD_STORE=bluestore        bluestore (sparse file) | memstore (RAM)
#   OSD_SIZE_GB=20             bluestore sparse file size / memstore device bytes
#   OSD_MEM_MB=1024            osd_memory_target
#   RGW_CACHE=true             false = no gateway metadata cache: with it, a gateway killed with
#                              SIGKILL leaves a watch behind that stalls every bucket creation on
#                              the others until the OSD times it out (30 s); tests that kill use false
#   S3_ACCESS_KEY / S3_SECRET_KEY / S3_UID   credentials of the S3 user created
# Prints "export S3_ENDPOINT=..." lines at the end (eval-able); writes them to $CEPH_DIR/s3.env
#
# Adapted from a recipe proven on Debian 12 / 2 cores: cold start ~17 s, restart ~5 s, ~300 MB RSS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RGW_PORT_ENV=${RGW_PORT:-}; RGW_COUNT_ENV=${RGW_COUNT:-}

CEPH_DIR=${CEPH_DIR:-/tmp/ownvault-ceph-rgw}
# values chosen at first bootstrap are remembered in $CEPH_DIR/params (env still overrides
# RGW_PORT/RGW_COUNT; MON_PORT is fixed once the monmap exists)
if [ -f "$CEPH_DIR/params" ]; then
  # shellcheck disable=SC1091
  . "$CEPH_DIR/params"
  RGW_PORT=${RGW_PORT_ENV:-$P_RGW_PORT}; RGW_COUNT=${RGW_COUNT_ENV:-$P_RGW_COUNT}; MON_PORT=$P_MON_PORT
fi
RGW_PORT=${RGW_PORT:-7480}
RGW_COUNT=${RGW_COUNT:-1}
MON_PORT=${MON_PORT:-3300}
OSD_STORE=${OSD_STORE:-bluestore}
OSD_SIZE_GB=${OSD_SIZE_GB:-20}
OSD_MEM_MB=${OSD_MEM_MB:-1024}
RGW_CACHE=${RGW_CACHE:-true}
S3_UID=${S3_UID:-vault}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-VAULTTESTACCESSKEY01}
S3_SECRET_KEY=${S3_SECRET_KEY:-vaulttestsecretkey0000000000000000000000}

log() { echo "[ceph-rgw-up $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$RGW_COUNT" -ge 1 ] && [ "$RGW_COUNT" -le 8 ] || die "RGW_COUNT must be 1..8"
if ! command -v radosgw >/dev/null || ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null; then
  bash "$HERE/setup.d/ceph.sh"
  command -v radosgw >/dev/null || die "Ceph is not installed (run scripts/setup.d/ceph.sh as root)"
fi

CONF=$CEPH_DIR/ceph.conf
export CEPH_CONF=$CONF
CEPH="ceph --conf $CONF --connect-timeout 15"

pid_alive() { # $1 = pid file; a zombie (killed, not yet reaped by init) counts as dead
  local pid state
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
http_up() { # $1 = port; true when something answers HTTP on 127.0.0.1:$1 (no curl needed)
  local line
  line=$( { exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
            printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
            read -r -t 2 l <&3 && echo "$l"; } 2>/dev/null ) || true
  [[ $line == HTTP/* ]]
}

mkdir -p "$CEPH_DIR"/{run,log,mon,osd,crash}

# ---------------------------------------------------------------- config + keys
if [ ! -f "$CEPH_DIR/.bootstrapped" ]; then
  log "bootstrapping new cluster in $CEPH_DIR"
  rm -rf "$CEPH_DIR"/{mon,osd,run,log,crash}/* "$CEPH_DIR"/*.keyring "$CEPH_DIR"/monmap
  FSID=$(uuidgen)
  if [ "$OSD_STORE" = memstore ]; then
    STORE_CONF="osd objectstore = memstore
memstore device bytes = $((OSD_SIZE_GB * 1024 * 1024 * 1024))"
  else
    STORE_CONF="osd objectstore = bluestore
bluestore block create = true
bluestore block size = $((OSD_SIZE_GB * 1024 * 1024 * 1024))
bluestore fsck on mount = false
bluestore fsck on mkfs = false
osd memory target = $((OSD_MEM_MB * 1024 * 1024))"
  fi
  cat > "$CONF" <<CONF_EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
ms bind port min = $((MON_PORT + 100))
ms bind port max = $((MON_PORT + 400))
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = $CEPH_DIR/run
pid file = $CEPH_DIR/run/\$name.pid
admin socket = $CEPH_DIR/run/\$name.asok
log file = $CEPH_DIR/log/\$name.log
log to stderr = false
err to stderr = true
crash dir = $CEPH_DIR/crash
mon data = $CEPH_DIR/mon/\$cluster-\$id
osd data = $CEPH_DIR/osd/\$cluster-\$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
[client]
keyring = $CEPH_DIR/\$cluster.\$name.keyring
[mon]
mon cluster log file = $CEPH_DIR/log/cluster.log
[osd]
$STORE_CONF
osd op num shards = 2
osd op num threads per shard = 2
osd max object size = 134217728
[client]
# radosgw settings (all instances); frontends/port are given on the command line
rgw thread pool size = 64
rgw dns name = localhost
rgw cache enabled = $RGW_CACHE
# reclaim space of deleted/overwritten objects quickly (default waits 2 h)
rgw gc obj min wait = 60
rgw gc processor period = 60
CONF_EOF

  # keys: mon. + client.admin (same layout as Ceph's manual-deployment docs)
  ceph-authtool --create-keyring "$CEPH_DIR/ceph.mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$CEPH_DIR/ceph.client.admin.keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$CEPH_DIR/ceph.mon.keyring" --import-keyring "$CEPH_DIR/ceph.client.admin.keyring" >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$CEPH_DIR/monmap" >/dev/null
  ceph-mon --conf "$CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap" --keyring "$CEPH_DIR/ceph.mon.keyring"
  touch "$CEPH_DIR/.bootstrapped"
fi

# ---------------------------------------------------------------- mon
if ! pid_alive "$CEPH_DIR/run/mon.a.pid"; then
  log "starting ceph-mon on 127.0.0.1:$MON_PORT"
  ceph-mon --conf "$CONF" -i a
fi
for _ in $(seq 1 60); do $CEPH -s >/dev/null 2>&1 && break; sleep 0.5; done
$CEPH -s >/dev/null 2>&1 || die "mon did not come up (see $CEPH_DIR/log/mon.a.log)"

# ---------------------------------------------------------------- osd.0
OSD_DIR=$CEPH_DIR/osd/ceph-0
if [ ! -f "$OSD_DIR/.made" ]; then
  log "creating osd.0 ($OSD_STORE)"
  rm -rf "$OSD_DIR"; mkdir -p "$OSD_DIR"
  OSD_UUID=$(uuidgen)
  OSD_KEY=$(ceph-authtool --gen-print-key)
  ID=$(echo "{\"cephx_secret\": \"$OSD_KEY\"}" | $CEPH osd new "$OSD_UUID" -i - -n client.admin)
  [ "$ID" = 0 ] || die "expected osd id 0, got '$ID' (stale cluster? run ceph-rgw-down.sh --purge)"
  ceph-authtool --create-keyring "$OSD_DIR/keyring" --name osd.0 --add-key "$OSD_KEY" >/dev/null
  ceph-osd --conf "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" --keyring "$OSD_DIR/keyring" \
      >"$CEPH_DIR/log/osd.0.mkfs.log" 2>&1 || { tail -20 "$CEPH_DIR/log/osd.0.mkfs.log"; die "osd mkfs failed"; }
  touch "$OSD_DIR/.made"
fi
if ! pid_alive "$CEPH_DIR/run/osd.0.pid"; then
  log "starting ceph-osd"
  ceph-osd --conf "$CONF" -i 0 --keyring "$OSD_DIR/keyring"
fi
for _ in $(seq 1 120); do
  $CEPH osd dump 2>/dev/null | grep -q '^osd.0 up' && break; sleep 0.5
done
$CEPH osd dump | grep -q '^osd.0 up' || die "osd.0 not up (see $CEPH_DIR/log/osd.0.log)"

# ---------------------------------------------------------------- radosgw (RGW_COUNT instances)
# One at a time: on a fresh cluster the first gateway creates the default realm, zone and
# pools, and two gateways doing that at once can leave one of them hanging.
IDS=(a b c d e f g h)
ENDPOINTS=""
for n in $(seq 0 $((RGW_COUNT - 1))); do
  id=${IDS[$n]}; port=$((RGW_PORT + n)); name=client.rgw.$id
  kr=$CEPH_DIR/ceph.$name.keyring
  [ -s "$kr" ] || $CEPH auth get-or-create "$name" mon 'allow *' osd 'allow rwx' -o "$kr"
  if ! pid_alive "$CEPH_DIR/run/$name.pid"; then
    log "starting radosgw $name on 127.0.0.1:$port"
    rm -f "$CEPH_DIR/run/$name.pid"
    radosgw --conf "$CONF" -n "$name" --keyring "$kr" --rgw-frontends "beast endpoint=127.0.0.1:$port"
  fi
  for i in $(seq 1 360); do
    http_up "$port" && break
    # the pid file appears once the daemon has forked; gone after that means it died
    if [ "$i" -gt 40 ] && ! pid_alive "$CEPH_DIR/run/$name.pid"; then
      tail -20 "$CEPH_DIR/log/$name.log" >&2 || true
      die "radosgw $name died while starting"
    fi
    sleep 0.25
  done
  http_up "$port" || { tail -20 "$CEPH_DIR/log/$name.log" >&2 || true; die "radosgw $name on 127.0.0.1:$port not answering"; }
  ENDPOINTS="$ENDPOINTS http://127.0.0.1:$port"
done

# ---------------------------------------------------------------- S3 user
if [ ! -f "$CEPH_DIR/.user-made" ]; then
  if ! radosgw-admin --conf "$CONF" user info --uid="$S3_UID" >/dev/null 2>&1; then
    log "creating S3 user $S3_UID"
    radosgw-admin --conf "$CONF" user create --uid="$S3_UID" --display-name="$S3_UID" \
        --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >/dev/null
  fi
  touch "$CEPH_DIR/.user-made"
fi

printf 'P_RGW_PORT=%s\nP_RGW_COUNT=%s\nP_MON_PORT=%s\n' "$RGW_PORT" "$RGW_COUNT" "$MON_PORT" > "$CEPH_DIR/params"
cat > "$CEPH_DIR/s3.env" <<ENV_EOF
export S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
export S3_ENDPOINTS="${ENDPOINTS# }"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1
ENV_EOF
log "up: $($CEPH health 2>/dev/null)"
cat "$CEPH_DIR/s3.env"
