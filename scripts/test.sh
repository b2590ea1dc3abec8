#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: set-up, a local PostgreSQL, lint, types, all tests
# (Ray, PostgreSQL and end-to-end tests included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate

if [ -z "${ACCELPOOL_TEST_POSTGRES_URL:-}" ]; then
  eval "$(bash scripts/postgres.sh start)"
  export ACCELPOOL_TEST_POSTGRES_URL
  trap 'bash scripts/postgres.sh stop' EXIT
fi
echo "tests: PostgreSQL at $ACCELPOOL_TEST_POSTGRES_URL"

echo "tests: ruff"
ruff check src tests bench
echo "tests: mypy"
mypy
echo "tests: pytest (a skipped test fails the run: ACCELPOOL_REQUIRE_BACKENDS=1)"
export ACCELPOOL_REQUIRE_BACKENDS=1
python -m pytest "$@"
