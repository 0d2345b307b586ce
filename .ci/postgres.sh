#!/usr/bin/env bash
# Throwaway PostgreSQL cluster on loopback, owned by an unprivileged user.
#   source .ci/postgres.sh && pg_start   -> exports PG_URL
#   pg_stop                              -> stops it and removes its directory
pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
  else
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
  fi
}

pg_start() {
  local bindir port as
  bindir=$(pg_bindir)
  [ -x "$bindir/initdb" ] || { echo "PostgreSQL binaries not found" >&2; return 1; }
  PG_DIR=$(mktemp -d /tmp/prescreen-pg.XXXXXX)
  port=${PG_PORT:-$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')}
  as=()
  if [ "$(id -u)" = 0 ]; then
    chown nobody "$PG_DIR"
    as=(runuser -u nobody --)
  fi
  "${as[@]}" "$bindir/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${as[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
  export PG_DIR PG_URL
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  local bindir as=()
  bindir=$(pg_bindir)
  [ "$(id -u)" = 0 ] && as=(runuser -u nobody --)
  "${as[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  unset PG_DIR
}
