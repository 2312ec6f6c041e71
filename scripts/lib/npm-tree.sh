# Sourced (not run) by the scripts/setup.d parts that install a pinned npm tree into the
# current directory's node_modules (git-ignored): node/npm present, `npm ci` only when
# package.json or package-lock.json changed since the last install (a stamp file records
# their hash), the stamp written only after the part's own self-test passed.

# npm_tree_current TAG: 0 when node_modules matches the lock files (nothing to do).
npm_tree_current() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "$1 node/npm not found: install Node.js >= 20 (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
  npm_tree_want=$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)
  npm_tree_stamp_file=node_modules/.ownvault-lock-sha256
  [ -f "$npm_tree_stamp_file" ] && [ "$(cat "$npm_tree_stamp_file")" = "$npm_tree_want" ]
}

# npm_tree_install: `npm ci` quietly; its log's tail on failure.
npm_tree_install() {
  npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1 || { tail -30 npm-ci.log >&2; exit 1; }
  rm -f npm-ci.log
}

# npm_tree_stamp: record the installed lock files (after the self-test).
npm_tree_stamp() {
  echo "$npm_tree_want" > "$npm_tree_stamp_file"
}
