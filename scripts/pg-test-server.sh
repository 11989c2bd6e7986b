#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: initdb and pg_ctl in a temporary folder, on a
# free loopback port, fsync on (PostgreSQL's default). initdb refuses to run as root, so
# as root they run as the `postgres` user (Debian's package makes it).
#
#   eval "$(scripts/pg-test-server.sh start)"   # exports FASTREFUND_TEST_PG and FASTREFUND_TEST_PG_DIR
#   scripts/pg-test-server.sh stop "$FASTREFUND_TEST_PG_DIR"
#   scripts/pg-test-server.sh restart "$FASTREFUND_TEST_PG_DIR"   # `-m immediate`: a crash
#   scripts/pg-test-server.sh down "$FASTREFUND_TEST_PG_DIR"      # crash it and leave it down
#   scripts/pg-test-server.sh up "$FASTREFUND_TEST_PG_DIR"        # start it again
set -euo pipefail
# shellcheck source=bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    dir=$(mktemp -d /tmp/fastrefund-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(free_port)
    as_pg "$bin/initdb" -D "$dir/data" -U fastrefund --auth=trust >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/port"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "export FASTREFUND_TEST_PG=postgres://fastrefund@127.0.0.1:$port/postgres FASTREFUND_TEST_PG_DIR=$dir"
    ;;
  stop)
    dir=${2:?the folder start made}
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  restart)
    dir=${2:?the folder start made}
    port=$(cat "$dir/port")
    # Crash recovery replays the WAL since the last checkpoint: on 2 busy cores that can
    # pass pg_ctl's default 60 s wait, hence -t.
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m immediate -w -t 600 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" restart >"$dir/restart.log" 2>&1 \
      || { cat "$dir/restart.log" >&2; tail -20 "$dir/server.log" >&2; exit 1; }
    ;;
  down)
    dir=${2:?the folder start made}
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  up)
    dir=${2:?the folder start made}
    port=$(cat "$dir/port")
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 600 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null
    ;;
  *) echo "usage: $0 start | stop DIR | restart DIR | down DIR | up DIR" >&2; exit 2 ;;
esac
