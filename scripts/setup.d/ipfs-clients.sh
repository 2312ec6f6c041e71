#!/usr/bin/env bash
# Installs the real IPFS clients tests/clients/test_clients.py runs against `ownvault serve`:
# @helia/verified-fetch (over a gateway-only Helia: createHeliaLight + @helia/http, no libp2p)
# and ipfs-car, pinned by tests/clients/package-lock.json. `npm ci` into
# tests/clients/node_modules (git-ignored, ~360 MB, about a minute the first time); a quick
# no-op when the lock file has not changed since the last install. Needs node >= 20 and the
# npm registry; downloads no binaries.
# Node 20: Helia 7's dependencies want Node >= 22 (undici 8): package.json overrides undici to
# ^7 and clients.mjs polyfills Promise.withResolvers. Helia hangs when the gateway fallback is
# its only router: clients.mjs adds a router that finds nothing (see its header).
set -euo pipefail
. "$(dirname "$0")/../lib/npm-tree.sh"
cd "$(dirname "$0")/../../tests/clients"
npm_tree_current "[ipfs-clients]" && exit 0
t0=$(date +%s)
npm_tree_install
# self-test: the clients load, and ipfs-car packs a known file to Kubo's CID for it
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
echo "Hello Mars!" > "$T/mars.txt"
node -e "import('@helia/verified-fetch').then(m => { if (typeof m.createVerifiedFetchWithHelia !== 'function') process.exit(1) })"
node node_modules/.bin/ipfs-car pack "$T/mars.txt" --no-wrap --output "$T/mars.car" >/dev/null 2>&1
got=$(node node_modules/.bin/ipfs-car roots "$T/mars.car")
[ "$got" = bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4 ] || { echo "[ipfs-clients] self-test failed: $got" >&2; exit 1; }
npm_tree_stamp
echo "[ipfs-clients] installed in $(( $(date +%s) - t0 )) s: node tests/clients/clients.mjs verified-fetch GATEWAY JOBS.json"
