#!/usr/bin/env bash
# Installs the real clients the drive tests (tests/drive) use, from Debian's packages:
# fuse3 (fusermount3 and libfuse3, which `ownvault mount` needs), rsync, rclone (a WebDAV client)
# and davfs2 (mount.davfs). Idempotent and quick when done. As root it installs what is
# missing; not as root it only says what is missing (those tests then skip, saying why).
set -euo pipefail
PKGS=(fuse3 rclone davfs2 rsync)
have_all() {
  command -v fusermount3 >/dev/null && command -v rclone >/dev/null \
    && command -v mount.davfs >/dev/null && command -v rsync >/dev/null \
    && ldconfig -p | grep -q 'libfuse3\.so'
}
have_all && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup.d/drive.sh: ${PKGS[*]} not all installed and this is not root." >&2
  echo "  Install them with: sudo apt-get install --no-install-recommends ${PKGS[*]}" >&2
  echo "  (the FUSE mount, rclone and davfs2 tests in tests/drive skip without them)" >&2
  exit 0
fi
echo "setup.d/drive.sh: installing ${PKGS[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${PKGS[@]}" >/dev/null 2>&1; then
  apt-get update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${PKGS[@]}" >/dev/null
fi
have_all || { echo "setup.d/drive.sh: install finished but commands are missing" >&2; exit 1; }
