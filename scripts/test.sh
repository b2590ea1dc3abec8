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

echo "tests: ruff"
ruff check src tests bench
echo "tests: mypy"
mypy
echo "tests: pytest (a skipped test fails the run: ACCELPOOL_REQUIRE_BACKENDS=1)"
export ACCELPOOL_REQUIRE_BACKENDS=1
python -m pytest "$@"
