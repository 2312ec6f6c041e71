#!/usr/bin/env bash
# Installs the loopback parts of the NFT preservation tests (tests/nft/): a local Ethereum
# chain (ganache 7.9.2, an in-process EVM), the Solidity compiler as JavaScript (npm `solc`,
# no compiler binary is downloaded), OpenZeppelin's contracts and a Helia IPFS node, all
# pinned by tests/nft/package-lock.json; then compiles tests/nft/contracts/*.sol.
# `npm ci` into tests/nft/node_modules (git-ignored, ~550 MB, about two minutes the first
# time); a quick no-op when nothing changed. Needs node >= 20 and the npm registry.
set -euo pipefail
. "$(dirname "$0")/../lib/npm-tree.sh"
cd "$(dirname "$0")/../../tests/nft"
if ! npm_tree_current "[nft]"; then
  t0=$(date +%s)
  npm_tree_install
  npm_tree_stamp
  echo "[nft] npm ci took $(( $(date +%s) - t0 )) s"
fi
node compile.mjs   # no-op when contracts/ and the compiler are unchanged
