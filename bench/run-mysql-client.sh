#!/usr/bin/env bash
# Side-by-side benchmark of DbMigration's MySQL client against the mariadb CLI, on a throwaway MariaDB server.
#   bench/run-mysql-client.sh [rows] [runs]
# Writes bench/results/mysql-client.md. Needs mariadb-server (apt-get install mariadb-server).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rows="${1:-1000000}"
runs="${2:-5}"
work=$(mktemp -d /tmp/dbm-bench-mysql-XXXXXX)
chmod 755 "$work"
cleanup() { [ -n "${my_pid:-}" ] && kill "$my_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "bench: starting MariaDB"
my_start "$work" --innodb-buffer-pool-size=1G --innodb-log-file-size=512M --max-allowed-packet=64M
"${my[@]}" -e "CREATE DATABASE bench"
port=$my_port

dotnet build -c Release bench/DbMigration.Bench bench/DbMigration.DataGen >/dev/null 2>&1 || { dotnet build -c Release bench/DbMigration.Bench; dotnet build -c Release bench/DbMigration.DataGen; }
bench_dll=bench/DbMigration.Bench/bin/Release/net10.0/DbMigration.Bench.dll
csv="$work/events.csv"
dotnet bench/DbMigration.DataGen/bin/Release/net10.0/DbMigration.DataGen.dll --engine csv --target "$csv" --rows "$rows" >/dev/null
columns="id,device_id,event_type,location,created_at,updated_at,amount,event_uuid,note"
schema="CREATE TABLE events (id BIGINT PRIMARY KEY, device_id INT NOT NULL, event_type VARCHAR(16) NOT NULL, location VARCHAR(24) NOT NULL, created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32), amount DECIMAL(12,2) NOT NULL, event_uuid CHAR(36) NOT NULL, note VARCHAR(255)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
cli=(mariadb --no-defaults -h 127.0.0.1 -P "$port" -u b -pbpw bench)
cs="Server=127.0.0.1;Port=$port;User ID=b;Password=bpw;Database=bench;SslMode=None"

now() { date +%s.%N; }
reset_table() { "${cli[@]}" -e "DROP TABLE IF EXISTS events; $schema"; }

echo "bench: load $rows rows, $runs runs each"
load_cli=(); load_ours=(); load_inproc=()
for r in $(seq 1 "$runs"); do
  reset_table
  t0=$(now); "${cli[@]}" --local-infile=1 -e "LOAD DATA LOCAL INFILE '$csv' INTO TABLE events CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' LINES TERMINATED BY '\n' ($columns)"; t1=$(now)
  load_cli+=("$(echo "$t1 - $t0" | bc)")
  reset_table
  t0=$(now); out=$(dotnet "$bench_dll" mysql-load "$cs" events "$csv" "$columns"); t1=$(now)
  load_ours+=("$(echo "$t1 - $t0" | bc)"); load_inproc+=("$(echo "$out" | awk '{print $1}')")
done
count=$("${cli[@]}" -N -e "SELECT COUNT(*) FROM events")
[ "$count" = "$rows" ] || { echo "bench: loaded $count rows, expected $rows" >&2; exit 1; }

echo "bench: read $rows rows, $runs runs each"
read_cli=(); read_ours=(); read_inproc=()
"${cli[@]}" --batch --quick -e "SELECT * FROM events" > /dev/null   # warm the buffer pool
for r in $(seq 1 "$runs"); do
  t0=$(now); "${cli[@]}" --batch --quick -e "SELECT * FROM events" > /dev/null; t1=$(now)
  read_cli+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); out=$(dotnet "$bench_dll" mysql-read "$cs" "SELECT * FROM events"); t1=$(now)
  [ "$(echo "$out" | awk '{print $2}')" = "$rows" ] || { echo "bench: read returned $out" >&2; exit 1; }
  read_ours+=("$(echo "$t1 - $t0" | bc)"); read_inproc+=("$(echo "$out" | awk '{print $1}')")
done

m_read_cli=$(printf '%s\n' "${read_cli[@]}" | median); m_read_ours=$(printf '%s\n' "${read_ours[@]}" | median)
m_load_cli=$(printf '%s\n' "${load_cli[@]}" | median); m_load_ours=$(printf '%s\n' "${load_ours[@]}" | median)
m_read_inproc=$(printf '%s\n' "${read_inproc[@]}" | median); m_load_inproc=$(printf '%s\n' "${load_inproc[@]}" | median)
r_read=$(ratio "$m_read_ours" "$m_read_cli"); r_load=$(ratio "$m_load_ours" "$m_load_cli")
server_version=$("${cli[@]}" -N -e "SELECT VERSION()")

mkdir -p bench/results
cat > bench/results/mysql-client.md <<MD
# MySQL client benchmark

Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`bench/run-mysql-client.sh $rows $runs\`, side by side in one run on one
machine ($(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB), against MariaDB $server_version on loopback TCP without TLS.
The events table: $rows rows of about 190 bytes (bench/README.md). Each figure is the median of $runs runs, timed
from outside each process the same way for both tools: every run is a fresh process, so ours includes .NET start-up
and connecting, as the CLI's includes its own start-up. The last column is ours timed inside the process (connect to
last row), for reference.

| Workload | mariadb CLI (s) | DbMigration.MySql (s) | Ratio | Goal (at most 1.2x) | ours in-process (s) |
|---|---|---|---|---|---|
| Read all rows (\`mariadb --batch --quick > /dev/null\` vs. reading every value with MySqlDataReader) | $m_read_cli | $m_read_ours | ${r_read}x | $(verdict "$r_read" 1.2) | $m_read_inproc |
| Bulk load from the same CSV (\`LOAD DATA LOCAL INFILE\` in the CLI vs. MySqlBulkLoader from a stream) | $m_load_cli | $m_load_ours | ${r_load}x | $(verdict "$r_load" 1.2) | $m_load_inproc |

Raw runs (seconds):
- read, CLI: ${read_cli[*]}
- read, ours: ${read_ours[*]}
- load, CLI: ${load_cli[*]}
- load, ours: ${load_ours[*]}
MD
cat bench/results/mysql-client.md
