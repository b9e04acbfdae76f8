# shellcheck shell=bash
# tests/cluster/pglib.sh - a throw-away PostgreSQL 15 for the tests; source it.
#
#   pg_start [DIR]        initdb into DIR/data (a new temp dir if none) and start a
#                         server on a unix socket in DIR, no TCP; sets PG_DIR
#   pg_stop [fast|immediate]
#                         stop it (immediate: a crash, recovery at the next start)
#   pg_restart            start it again (stopping it first, fast, if it runs)
#   pg_conninfo           print the libpq conninfo of the server
#   pg_psql ARGS...       psql as the coexist role, e.g. pg_psql -c 'SELECT 1'
#   pg_destroy            stop it (immediate) and remove PG_DIR
#
# The server refuses to run as root, so as root (CI) it runs as the postgres
# account, which owns DIR; as another user it runs as that user. Every
# function fails loudly, with the server's log, and returns non-zero: a test
# that needs PostgreSQL fails when it cannot have one, it never skips.

# Debian keeps the server binaries off PATH; elsewhere (Fedora) they are on it.
if [ -z "${PG_BIN:-}" ]; then
    PG_BIN=/usr/lib/postgresql/15/bin
    if [ ! -x "$PG_BIN/initdb" ] && command -v initdb >/dev/null 2>&1; then
        PG_BIN=$(dirname "$(command -v initdb)")
    fi
fi
PG_DIR=${PG_DIR:-}

# pg_as - run a server binary as the account that owns the cluster.
pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pg_die - the reason, the tail of the server log, and a failure status.
pg_die() {
    echo "pglib: $*" >&2
    if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/log" ]; then
        tail -n 20 "$PG_DIR/log" | sed 's/^/pglib: log: /' >&2
    fi
    return 1
}

# pg_ctl_run - pg_ctl on the cluster with the socket-only options.
pg_ctl_run() {
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
        -o "-k $PG_DIR -c listen_addresses=''" "$@" >/dev/null
}

pg_start() {
    [ -x "$PG_BIN/initdb" ] || { pg_die "no $PG_BIN/initdb (Debian: postgresql-15)"; return 1; }
    PG_DIR=${1:-$(mktemp -d /tmp/coexist-pg.XXXXXX)} || { pg_die "mktemp failed"; return 1; }
    export PG_DIR
    mkdir -p "$PG_DIR" || { pg_die "cannot make $PG_DIR"; return 1; }
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PG_DIR" || { pg_die "cannot chown $PG_DIR to postgres"; return 1; }
    fi
    pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U coexist -E UTF8 --no-sync \
        >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; pg_die "initdb in $PG_DIR failed"; return 1; }
    pg_ctl_run start || { pg_die "the server in $PG_DIR did not start"; return 1; }
}

pg_stop() {
    local mode=${1:-fast}
    [ -n "$PG_DIR" ] || { pg_die "pg_stop: no server started"; return 1; }
    pg_ctl_run -m "$mode" stop || { pg_die "the server in $PG_DIR did not stop"; return 1; }
}

pg_restart() {
    [ -n "$PG_DIR" ] || { pg_die "pg_restart: no server started"; return 1; }
    if pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
        pg_stop fast || return 1
    fi
    pg_ctl_run start || { pg_die "the server in $PG_DIR did not start again"; return 1; }
}

pg_conninfo() {
    [ -n "$PG_DIR" ] || { pg_die "pg_conninfo: no server started"; return 1; }
    echo "host=$PG_DIR user=coexist dbname=postgres"
}

pg_psql() {
    psql -X -q -v ON_ERROR_STOP=1 -At "$(pg_conninfo)" "$@"
}

pg_destroy() {
    [ -n "$PG_DIR" ] || return 0
    if pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
        pg_ctl_run -m immediate stop || true
    fi
    rm -rf "$PG_DIR"
    PG_DIR=
}
