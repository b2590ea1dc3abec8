#!/usr/bin/env bash
# Start a throwaway local PostgreSQL for the tests and print the URL to use (on stdout, last line).
# Usage: eval "$(bash scripts/postgres.sh start)"   -> exports ACCELPOOL_TEST_POSTGRES_URL
#        bash scripts/postgres.sh stop
# Installs Debian's postgresql package when no server is found (needs root, as on CI).
set -euo pipefail
PGROOT=${ACCELPOOL_PG_DIR:-/tmp/accelpool-pg}
PORT=${ACCELPOOL_PG_PORT:-55432}

find_bin() {
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

as_pg() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    BIN=$(find_bin || true)
    if [ -z "$BIN" ]; then
      if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "postgres: installing Debian's postgresql package" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
        BIN=$(find_bin)
      else
        echo "postgres: no PostgreSQL server found and cannot install one" >&2
        exit 1
      fi
    fi
    if [ "$(id -u)" = "0" ] && ! id postgres >/dev/null 2>&1; then
      useradd --system --no-create-home postgres
    fi
    mkdir -p "$PGROOT"
    [ "$(id -u)" = "0" ] && chown postgres "$PGROOT"
    if [ ! -f "$PGROOT/data/PG_VERSION" ]; then
      as_pg "$BIN/initdb" -D "$PGROOT/data" -U accelpool --auth=trust >/dev/null
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$PGROOT/data" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGROOT -c fsync=off -c max_connections=200" start >&2
    fi
    as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U accelpool -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='accelpool_test'" | grep -q 1 \
      || as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U accelpool accelpool_test
    echo "export ACCELPOOL_TEST_POSTGRES_URL=postgresql+psycopg://accelpool@127.0.0.1:$PORT/accelpool_test"
    ;;
  stop)
    BIN=$(find_bin || true)
    [ -n "$BIN" ] && as_pg "$BIN/pg_ctl" -D "$PGROOT/data" -m fast stop >&2 || true
    ;;
esac
