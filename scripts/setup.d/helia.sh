#!/usr/bin/env bash
# Installs the loopback IPFS node the IPFS provider tests run against: Helia (the JavaScript
# IPFS implementation) behind tests/ipfsnode/helia-node.mjs (a Kubo RPC subset with MFS and
# named pins, a trustless gateway, an IPFS Pinning Service API server and a chaos switch).
# `npm ci` into tests/ipfsnode/node_modules (git-ignored, ~380 MB, about a minute the first
# time); a quick no-op when the lock file has not changed since the last install. Needs node
# >= 20 and the npm registry; downloads no binaries. Helia 7's dependencies target Node 22:
# package.json overrides undici to ^7 and the script polyfills Promise.withResolvers.
set -euo pipefail
. "$(dirname "$0")/../lib/npm-tree.sh"
cd "$(dirname "$0")/../../tests/ipfsnode"
npm_tree_current "[helia]" && exit 0
t0=$(date +%s)
npm_tree_install
# self-test: start an in-memory node on an ephemeral loopback port, store a block, stop it
out=$(mktemp); trap 'rm -f "$out"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
node helia-node.mjs --mem --port 0 >"$out" 2>&1 & pid=$!
for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.1; done
url=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$out")
[ -n "$url" ] || { echo "[helia] self-test: node did not start: $(cat "$out")" >&2; exit 1; }
got=$(printf 'Hello Mars!\n' | curl -sf -X POST --data-binary @- "$url/api/v0/block/put?cid-codec=raw")
case $got in *bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4*) ;; *) echo "[helia] self-test failed: $got" >&2; exit 1;; esac
npm_tree_stamp
echo "[helia] installed in $(( $(date +%s) - t0 )) s: node tests/ipfsnode/helia-node.mjs --port 0 --repo DIR"
