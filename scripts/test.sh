#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: set-up, a local PostgreSQL, lint, types, all tests
# (Ray, PostgreSQL and end-to-end tests included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate

STOP=()
cleanup() { for s in "${STOP[@]}"; do bash "scripts/$s.sh" stop || true; done; }
trap cleanup EXIT

if [ -z "${ACCELPOOL_TEST_POSTGRES_URL:-}" ]; then
  eval "$(bash scripts/postgres.sh start)"
  export ACCELPOOL_TEST_POSTGRES_URL
  STOP+=(postgres)
fi
echo "tests: PostgreSQL at $ACCELPOOL_TEST_POSTGRES_URL"

if [ -z "${ACCELPOOL_TEST_SLURM_CONF:-}" ]; then
  eval "$(bash scripts/slurm.sh start)"
  export ACCELPOOL_TEST_SLURM_CONF
  STOP+=(slurm)
fi
echo "tests: Slurm at $ACCELPOOL_TEST_SLURM_CONF"

# The browser tests (tests/web/test_browser.py) drive Debian's chromium with Playwright (the playwright
# package is in the dev extras; no browser download): install chromium and a Korean font when missing.
if [ ! -x "${ACCELPOOL_CHROMIUM:-/usr/bin/chromium}" ] || ! fc-list 2>/dev/null | grep -qi nanum; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "tests: installing chromium and fonts-nanum for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-nanum >/dev/null
  else
    echo "tests: no chromium at ${ACCELPOOL_CHROMIUM:-/usr/bin/chromium}: run as root or install chromium" >&2
  fi
fi
mkdir -p test-artifacts/screenshots

echo "tests: ruff"
ruff check src tests bench
echo "tests: mypy"
mypy
echo "tests: pytest (a skipped test fails the run: ACCELPOOL_REQUIRE_BACKENDS=1)"
export ACCELPOOL_REQUIRE_BACKENDS=1
python -m pytest "$@"
