#!/usr/bin/env bash
# The test command: the whole workspace on the embedded SQLite default, then the integration suite again
# on PostgreSQL + Redis, then the browser tests of the pages (scripts/browser-tests.sh). Outside CI a
# missing PostgreSQL/Redis, or Chromium/Node.js, skips that pass with a note; with CI=true it is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
redis_url=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Every invocation selects the whole workspace so features unify the same way and nothing rebuilds.
if cargo nextest --version >/dev/null 2>&1; then
  run_all() { cargo nextest run --profile "${NEXTEST_PROFILE:-default}" --workspace; }
  run_api() { cargo nextest run --profile "${NEXTEST_PROFILE:-default}" --workspace -E 'binary(api)'; }
else
  run_all() { cargo test --workspace; }
  run_api() { cargo test --workspace --test api; }
fi

echo "== tests on SQLite (embedded default)"
(
  unset TEST_DATABASE_URL TEST_REDIS_URL DATABASE_URL REDIS_URL
  run_all
)

if port_open 127.0.0.1 5432 && port_open 127.0.0.1 6379; then
  # Databases left behind by an interrupted earlier run.
  if command -v psql >/dev/null 2>&1; then
    psql "$pg_url" -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'onemedi_test_%'" 2>/dev/null |
      while read -r name; do [ -n "$name" ] && psql "$pg_url" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" || true; done
  fi
  echo "== integration tests on PostgreSQL + Redis"
  TEST_DATABASE_URL=$pg_url TEST_REDIS_URL=$redis_url run_api
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is unreachable: CI requires both" >&2
  exit 1
else
  echo "== PostgreSQL or Redis not reachable: skipped the second pass (bash scripts/services.sh starts them)"
fi

# The pages, in headless Chromium against real servers (skipped with a note outside CI when Chromium or
# Node.js is missing).
bash scripts/browser-tests.sh
