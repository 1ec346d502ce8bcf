# Shared by the bench scripts (sourced, not run): a free port, a throwaway PostgreSQL server, and the ratio columns.

# A TCP port nothing listens on now, on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a throwaway PostgreSQL server (the newest installed) in <work>/pg, run as the postgres user, on loopback,
# with the given extra settings ("-c name=value ..."). Sets pg_bin, pg_ctl, pg_port and psql (an array); the caller's
# exit trap stops it with "$pg_ctl" -D <work>/pg.
#   pg_start <work> <settings>
pg_start() {
  local work="$1" settings="$2"
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); pg_ctl="$pg_bin/pg_ctl"
  pg_port=$(free_port)
  chown postgres: "$work" 2>/dev/null || true
  runuser -u postgres -- "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C -N >/dev/null
  runuser -u postgres -- "$pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 $settings" start >/dev/null
  psql=(psql -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -q)
}

ratio() { echo "$1 $2" | awk '{printf "%.2f", $1 / $2}'; }

# "met" when the ratio is at most the goal.
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r <= g ? "met" : "NOT met") }'; }
