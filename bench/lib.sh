# Shared by the bench scripts and .ci/run-pester (sourced, not run): a free port, throwaway PostgreSQL and MariaDB servers, the median
# and the ratio columns.

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

# Starts a throwaway MariaDB server in <work>/my on loopback (as the mysql user when run as root), with the given extra
# server options, and creates the user b (password bpw) with every privilege. Sets my_port, my_pid and my (a root
# client on the server's socket, an array); the caller's exit trap kills "$my_pid".
#   my_start <work> [option ...]
my_start() {
  local work="$1"; shift
  local user_args=()
  my_port=$(free_port)
  mkdir -p "$work/my"
  if [ "$(id -u)" = 0 ]; then chown mysql: "$work/my"; user_args=(--user=mysql); fi
  mariadb-install-db --no-defaults --datadir="$work/my/data" --auth-root-authentication-method=normal --skip-test-db "${user_args[@]}" >/dev/null
  mariadbd --no-defaults --datadir="$work/my/data" --socket="$work/my/sock" --port="$my_port" --bind-address=127.0.0.1 \
    --skip-name-resolve --character-set-server=utf8mb4 --innodb-flush-log-at-trx-commit=2 --local-infile=1 \
    --log-error="$work/my/error.log" "${user_args[@]}" "$@" &
  my_pid=$!
  my=(mariadb --no-defaults -S "$work/my/sock" -uroot)
  for _ in $(seq 1 100); do "${my[@]}" -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
  "${my[@]}" -e "CREATE USER 'b'@'%' IDENTIFIED BY 'bpw'; GRANT ALL ON *.* TO 'b'@'%';"
}

# The median of numbers given one per line or separated by spaces (the mean of the middle two for an even count).
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {printf "%.3f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

ratio() { echo "$1 $2" | awk '{printf "%.2f", $1 / $2}'; }

# "met" when the ratio is at most the goal.
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r <= g ? "met" : "NOT met") }'; }
