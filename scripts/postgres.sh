#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the distributed-tuning tests.
#
#   scripts/postgres.sh start   # prints: export LABELWISE_TEST_POSTGRES=postgresql://...
#   scripts/postgres.sh stop
#
# Uses Debian's packages (apt-get install postgresql); the data dir is $LABELWISE_PG_DIR
# (default /tmp/labelwise-pg), the port $LABELWISE_PG_PORT (default 54329). As root, the
# server runs as the postgres user, as PostgreSQL requires.
set -euo pipefail
DIR=${LABELWISE_PG_DIR:-/tmp/labelwise-pg}
PORT=${LABELWISE_PG_PORT:-54329}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$BIN" ]; then
  BIN=$(dirname "$(command -v initdb || echo /nonexistent/initdb)")
fi
if [ ! -x "$BIN/initdb" ]; then
  echo "postgres.sh: PostgreSQL not found; install it: apt-get install -y postgresql" >&2
  exit 2
fi
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    if [ ! -f "$DIR/PG_VERSION" ]; then
      mkdir -p "$DIR"
      [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
      as_owner "$BIN/initdb" -D "$DIR" -U postgres --auth=trust >/dev/null
    fi
    if ! as_owner "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      as_owner "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $PORT -k $DIR -c max_connections=200" start >/dev/null
    fi
    as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='labelwise_test'" | grep -q 1 ||
      as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres labelwise_test
    echo "export LABELWISE_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$PORT/labelwise_test"
    ;;
  stop)
    as_owner "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
