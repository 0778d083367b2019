#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the real-components test tier.
#
#   eval "$(.ci/postgres.sh start)"   # prints export lines: FUSIONREC_TEST_POSTGRES_URL, PGTMP
#   .ci/postgres.sh stop "$PGTMP"     # stops the server and removes its folder
#
# The cluster lives in a fresh temp folder, listens on 127.0.0.1 only, on a free port, with its
# unix socket inside that folder (never the system's /var/run/postgresql), and trusts local
# connections: nothing outside this machine can reach it and it is deleted on stop.
# initdb and postgres refuse to run as root, so they run as the `postgres` system user (from
# Debian's postgresql packages), or `nobody` where that user is absent.
set -Eeuo pipefail

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"

as_owner() {  # run a command as the unprivileged owner of the cluster
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$OWNER" -- "$@"; else "$@"; fi
}

owner() {
  if [ -n "${PGOWNER:-}" ]; then echo "$PGOWNER"
  elif [ "$(id -u)" -ne 0 ]; then id -un
  elif id postgres >/dev/null 2>&1; then echo postgres
  else echo nobody; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

start() {
  if [ ! -x "$PGBIN/initdb" ]; then
    echo "postgres.sh: no PostgreSQL 15 in $PGBIN (apt-get install postgresql-15)" >&2
    exit 1
  fi
  OWNER="$(owner)"
  local dir port
  dir="$(mktemp -d /tmp/fusionrec-pg.XXXXXX)"
  chown "$OWNER" "$dir"
  chmod 700 "$dir"
  # Any failure from here on removes the half-made cluster.
  trap 'as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$dir"' ERR
  as_owner "$PGBIN/initdb" -D "$dir/data" -U fusionrec --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; false; }
  for _ in 1 2 3; do  # a port taken between picking and binding: pick another
    port="$(free_port)"
    if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on" start >/dev/null; then
      trap - ERR
      echo "export FUSIONREC_TEST_POSTGRES_URL='postgresql://fusionrec@127.0.0.1:$port/postgres'"
      echo "export PGTMP='$dir'"
      return 0
    fi
  done
  cat "$dir/server.log" >&2
  false
}

stop() {
  local dir="${1:?usage: postgres.sh stop DIR}"
  case "$dir" in
    /tmp/fusionrec-pg.*) ;;
    *) echo "postgres.sh: refusing to remove $dir" >&2; exit 1 ;;
  esac
  [ -d "$dir" ] || return 0
  OWNER="$(stat -c %U "$dir")"
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || \
      as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
