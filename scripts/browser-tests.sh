#!/usr/bin/env bash
# Browser tests (tests/browser): build the server, then drive headless Debian Chromium with playwright-core
# against real `onemedi serve` processes on SQLite. With CI=true a missing Chromium, node or npm is a
# failure (.ci/run installs Chromium first); elsewhere the tests are skipped with a note.
# ONEMEDI_SCREENSHOTS=docs/screenshots refreshes the README's screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium=${CHROMIUM:-/usr/bin/chromium}
missing=""
[ -x "$chromium" ] || missing="$missing chromium ($chromium)"
command -v node >/dev/null 2>&1 || missing="$missing node"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "browser tests: missing$missing; CI requires them" >&2
    exit 1
  fi
  echo "== browser tests skipped: missing$missing (apt-get install chromium nodejs npm)"
  exit 0
fi

echo "== browser tests (headless $("$chromium" --version 2>/dev/null | head -n1))"
# The server binary as the test suites build it (same features, so nothing is rebuilt after them).
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-run
else
  cargo test --workspace --no-run
fi
(cd tests/browser && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund; })
started=$(date +%s)
(cd tests/browser && CHROMIUM="$chromium" ONEMEDI_BIN="$PWD/../../target/debug/onemedi" npm test --silent)
echo "== browser tests took $(($(date +%s) - started)) s"
