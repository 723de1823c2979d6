#!/bin/sh
# A throwaway PostgreSQL cluster for tests and benchmarks: `start` prints its DSN, `stop` removes it, `status`
# says whether it runs. Installs Debian's PostgreSQL when absent. Idempotent: `start` on a running cluster only
# prints the DSN again; `stop` on none does nothing.
#   HEISTWATCH_PG_DIR   where the cluster lives (default: $TMPDIR/heistwatch-pg); keep it short, it holds the socket
#   HEISTWATCH_PG_PORT  the port number that names the socket (default 5432; no TCP port is opened)
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user (created by Debian's
# package), or as a `heistwatch-pg` system user created here when that is missing.
set -eu

DIR=${HEISTWATCH_PG_DIR:-${TMPDIR:-/tmp}/heistwatch-pg}
PORT=${HEISTWATCH_PG_PORT:-5432}
DB=heistwatch
ROLE=heistwatch

say() { echo "postgres.sh: $*" >&2; }

bindir() {
    # Debian keeps psql, createdb and the server tools together in one versioned folder; PATH may hold only links.
    if command -v pg_ctl >/dev/null 2>&1; then
        found=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    else
        found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    fi
    [ -n "$found" ] && [ -x "$found/initdb" ] && [ -x "$found/psql" ] && echo "$found"
}

install_postgres() {
    say "PostgreSQL not found; installing Debian's package"
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        say "cannot install PostgreSQL: not root and no sudo; run: apt-get install -y postgresql"
        exit 1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

server_user() {
    if [ "$(id -u)" -ne 0 ]; then
        id -un
    elif id postgres >/dev/null 2>&1; then
        echo postgres
    else
        id heistwatch-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin heistwatch-pg
        echo heistwatch-pg
    fi
}

# Run a command as the server's user (directly when that is who we are).
as_server() {
    if [ "$(id -un)" = "$USER_OS" ]; then
        "$@"
    else
        runuser -u "$USER_OS" -- "$@"
    fi
}

dsn() { echo "postgresql://$ROLE@/$DB?host=$DIR&port=$PORT"; }

running() { [ -n "${BIN:-}" ] && [ -d "$DIR/data" ] && as_server "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; }

start() {
    BIN=$(bindir) || true
    if [ -z "$BIN" ]; then
        install_postgres
        BIN=$(bindir) || { say "PostgreSQL installed but pg_ctl/initdb not found under /usr/lib/postgresql"; exit 1; }
    fi
    if ! running; then
        launch
    fi
    if ! as_server "$BIN/psql" -h "$DIR" -p "$PORT" -U "$ROLE" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
        as_server "$BIN/createdb" -h "$DIR" -p "$PORT" -U "$ROLE" "$DB"
    fi
    dsn
}

launch() {
    mkdir -p "$DIR"
    chmod 0700 "$DIR"
    chown "$USER_OS" "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        rm -rf "$DIR/data"
        as_server "$BIN/initdb" -D "$DIR/data" -U "$ROLE" --auth=trust --encoding=UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; say "initdb failed"; exit 1; }
    fi
    # Unix socket only: nothing listens on the network, and several clusters never fight over a TCP port.
    as_server "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses='' -c unix_socket_directories='$DIR' -p $PORT" start >&2 \
        || { tail -n 20 "$DIR/server.log" >&2; say "the server did not start (log: $DIR/server.log)"; exit 1; }
}

stop() {
    BIN=$(bindir) || true
    if running; then
        as_server "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2
    fi
    rm -rf "$DIR"
}

USER_OS=$(server_user)
case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) BIN=$(bindir) || true; if running; then dsn; else say "not running"; exit 3; fi ;;
    *) say "usage: scripts/postgres.sh start|stop|status"; exit 2 ;;
esac
