#!/usr/bin/env bash
# Installs the loopback parts of the NFT preservation tests (tests/nft/): a local Ethereum
# chain (ganache 7.9.2, an in-process EVM), the Solidity compiler as JavaScript (npm `solc`,
# no compiler binary is downloaded), OpenZeppelin's contracts and a Helia IPFS node, all
# pinned by tests/nft/package-lock.json; then compiles tests/nft/contracts/*.sol.
# `npm ci` into tests/nft/node_modules (git-ignored, ~550 MB, about two minutes the first
# time); a quick no-op when nothing changed. Needs node >= 20 and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/../../tests/nft"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "[nft] node/npm not found: install Node.js >= 20 (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
want=$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)
stamp=node_modules/.ownvault-lock-sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  t0=$(date +%s)
  npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1 || { tail -30 npm-ci.log >&2; exit 1; }
  rm -f npm-ci.log
  echo "$want" > "$stamp"
  echo "[nft] npm ci took $(( $(date +%s) - t0 )) s"
fi
node compile.mjs   # no-op when contracts/ and the compiler are unchanged
