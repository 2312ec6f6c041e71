#!/usr/bin/env bash
# Installs Ceph's RADOS Gateway, monitor and OSD from Debian's packages: the real S3 server
# that the S3 provider's tests and bench/s3.py run against (scripts/ceph-rgw-up.sh starts it).
# Idempotent and quick when done. As root it runs `apt-get update` once, then installs what
# is missing; not as root it only reports what is missing (tests that need Ceph then fail
# when CI=true, and skip with this message otherwise).
set -euo pipefail
PKGS=(radosgw ceph-mon ceph-osd uuid-runtime)
have_all() {
  command -v radosgw >/dev/null && command -v ceph-mon >/dev/null \
    && command -v ceph-osd >/dev/null && command -v ceph-authtool >/dev/null \
    && command -v monmaptool >/dev/null && command -v radosgw-admin >/dev/null \
    && command -v uuidgen >/dev/null
}
have_all && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup.d/ceph.sh: Ceph RADOS Gateway is not installed and this is not root." >&2
  echo "  Install it with: sudo apt-get install --no-install-recommends ${PKGS[*]}" >&2
  echo "  (the S3 provider tests against a real Ceph fail under CI=true without it)" >&2
  exit 0
fi
echo "setup.d/ceph.sh: installing ${PKGS[*]} (Debian packages, ~290 MB, ~30 s)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${PKGS[@]}" >/dev/null
have_all || { echo "setup.d/ceph.sh: install finished but commands are missing" >&2; exit 1; }
