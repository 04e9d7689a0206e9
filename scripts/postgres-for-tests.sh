# shellcheck shell=bash
# A throwaway PostgreSQL for fieldsync's tests, for CI (root, Debian 12) and developers.
#
#   source scripts/postgres-for-tests.sh
#   start_postgres            # installs if needed, starts, exports FIELDSYNC_TEST_POSTGRES,
#                             # and sets `trap stop_postgres EXIT` (replaces any EXIT trap)
#   FIELDSYNC_PG_KEEP=1 start_postgres   # no trap: leave it running; stop_postgres later
#
# The cluster lives in a fresh temp directory owned by the `postgres` user, listens only on
# 127.0.0.1:$FIELDSYNC_PG_PORT (default 55432) and on a unix socket in that directory, with
# fsync=on. Role fieldsync/fieldsync (LOGIN CREATEDB, so tests can make one database each)
# owns database fieldsync. Its directory is recorded in /tmp/fieldsync-pg.<port>.dir so that
# stop_postgres works from another shell too.

start_postgres() {
    local port=${FIELDSYNC_PG_PORT:-55432} bin dir
    if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                postgresql >/dev/null || { echo "start_postgres: apt-get failed" >&2; return 1; }
    fi
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    dir=$(mktemp -d /tmp/fieldsync-pg.XXXXXX) || return 1
    chown postgres: "$dir" && chmod 700 "$dir" || return 1
    echo "$dir" >"/tmp/fieldsync-pg.$port.dir"
    export FIELDSYNC_PG_DIR=$dir FIELDSYNC_PG_BIN=$bin FIELDSYNC_PG_PORT=$port
    [ -n "${FIELDSYNC_PG_KEEP:-}" ] || trap stop_postgres EXIT

    # --no-sync only skips initdb's final flush of a directory we throw away; the server
    # itself runs with fsync=on.
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 --no-sync --no-instructions \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
max_connections = 200
EOF
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        >/dev/null || { cat "$dir/server.log" >&2; return 1; }
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30 || { cat "$dir/server.log" >&2; return 1; }
    runuser -u postgres -- "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" \
        -U postgres -d postgres \
        -c "CREATE ROLE fieldsync LOGIN CREATEDB PASSWORD 'fieldsync'" \
        -c "CREATE DATABASE fieldsync OWNER fieldsync" || return 1
    export FIELDSYNC_TEST_POSTGRES="postgres://fieldsync:fieldsync@127.0.0.1:$port/fieldsync"
}

stop_postgres() {
    local port=${FIELDSYNC_PG_PORT:-55432}
    local dir=${FIELDSYNC_PG_DIR:-$(cat "/tmp/fieldsync-pg.$port.dir" 2>/dev/null)}
    local bin=${FIELDSYNC_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
    case $dir in /tmp/fieldsync-pg.*) ;; *) return 0 ;; esac
    if [ -f "$dir/data/postmaster.pid" ]; then
        runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
    fi
    rm -rf -- "$dir" "/tmp/fieldsync-pg.$port.dir"
    unset FIELDSYNC_PG_DIR FIELDSYNC_TEST_POSTGRES
}
