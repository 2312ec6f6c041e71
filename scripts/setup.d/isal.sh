#!/usr/bin/env bash
# Installs Debian's libisal2 (Intel ISA-L, libisal.so.2): ownvault's erasure code calls it
# directly by ctypes, without the GIL (src/ownvault/core/isal.py). Without it the code falls
# back to pyeclib (slower, holds the GIL), and tests/core/test_erasure_isal.py fails, since
# it compares the two. Idempotent: a no-op when the loader finds libisal.so.2. As root it
# installs the package; not as root it only says what is missing.
set -euo pipefail
have_isal() { { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q 'libisal\.so\.2'; }
have_isal && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "setup.d/isal.sh: libisal.so.2 not found and this is not root with apt-get." >&2
  echo "  Install it with: sudo apt-get install --no-install-recommends libisal2" >&2
  exit 0
fi
echo "setup.d/isal.sh: installing libisal2 (Debian package)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends libisal2 >/dev/null 2>&1; then
  apt-get update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends libisal2 >/dev/null
fi
have_isal || { echo "setup.d/isal.sh: install finished but libisal.so.2 is missing" >&2; exit 1; }
