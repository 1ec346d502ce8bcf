#!/usr/bin/env bash
# Timezone migration benchmark, side by side in one run, written to bench/results/timezone.md.
#   bench/run-timezone.sh [sizes, comma-separated] [repetitions]
# SQLite: Invoke-TimezoneMigration's engine vs the sqlite3 CLI's UPDATE … strftime(…,'utc') with TZ set (which shifts
# gap values silently) and the V_Track seed script's published 8,333 rows/s. PostgreSQL: vs a hand-written
# ALTER … TYPE timestamptz USING … AT TIME ZONE. MariaDB: vs a hand-written UPDATE … CONVERT_TZ.
# Every engine runs at every size. Each timing is the median of [repetitions] runs on fresh copies (three times as many
# at 200k rows or fewer, a single run above 2M rows); servers are left to finish flushing and purging before each timed
# run, and the two sides take turns going first. The server engines are timed twice: each side from a fresh process
# (DbMigration's .NET start-up against the CLI's), and, up to 2M rows, both sides in one already-running process, as a
# PowerShell session runs the cmdlet (bench host workload timezone-session: one untimed warm-up pair, each side on a
# new connection).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
sizes="${1:-100000,1000000,10000000}"; reps="${2:-5}"; zone="America/New_York"
work=$(mktemp -d /tmp/dbm-bench-tz-XXXXXX); chmod 755 "$work"
trap '[ -n "${pg_ctl:-}" ] && runuser -u postgres -- "$pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1; [ -n "${my_pid:-}" ] && kill "$my_pid" 2>/dev/null; sleep 1; rm -rf "$work"' EXIT
# The workload host is published with ReadyToRun images, as a Release build lays out the module.
dotnet publish -c Release --use-current-runtime --self-contained false -p:PublishReadyToRun=true bench/DbMigration.Bench -o bench/DbMigration.Bench/bin/publish >/dev/null; dotnet build -c Release bench/DbMigration.DataGen >/dev/null
bench=(dotnet bench/DbMigration.Bench/bin/publish/DbMigration.Bench.dll)
datagen=(dotnet bench/DbMigration.DataGen/bin/Release/net10.0/DbMigration.DataGen.dll)
now() { date +%s.%N; }
rate() { echo "$1 $2" | awk '{printf "%.0f", $1 / $2}'; }
timeit() { local t0; t0=$(now); "$@" >/dev/null 2>&1; echo "$(now) $t0" | awk '{printf "%.3f", $1 - $2}'; }
verdict_min() { awk -v r="$1" -v g="$2" 'BEGIN { print (r >= g ? "met" : "NOT met") }'; }
# Three times the runs at 200k rows or fewer, where fixed costs and run-to-run noise weigh most; one above 2M rows.
runs_for() { if [ "$1" -gt 2000000 ]; then echo 1; elif [ "$1" -le 200000 ]; then echo $((3 * reps)); else echo "$reps"; fi; }

sqlite_rows=""; sqlite_goal_rate=""; rss_list=""
for n in ${sizes//,/ }; do
  echo "bench: SQLite $n rows"
  "${datagen[@]}" --engine sqlite --target "$work/base.db" --rows "$n" >/dev/null
  runs=$(runs_for "$n")
  cli=""; ours=""; rss=0
  for i in $(seq 1 "$runs"); do
    cp "$work/base.db" "$work/cli.db"; sync
    cli+=" $(timeit env TZ="$zone" sqlite3 "$work/cli.db" "UPDATE events SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'utc'), updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', updated_at, 'utc');")"
    rm -f "$work/cli.db"
    cp "$work/base.db" "$work/ours.db"; sync
    out=$( { /usr/bin/time -f "RSS %M" "${bench[@]}" timezone "$work/ours.db" "$zone" 50000; } 2>&1 )
    ours+=" $(echo "$out" | awk 'NR==1 {print $1}')"
    r=$(echo "$out" | awk '/RSS/ {printf "%.0f", $2/1024}'); [ "$r" -gt "$rss" ] && rss=$r
    rm -f "$work/ours.db"
  done
  t_ours=$(echo "$ours" | median); t_cli=$(echo "$cli" | median)
  rss_list+=" $rss"
  [ "$n" -eq 1000000 ] && sqlite_goal_rate=$(rate "$n" "$t_ours")
  sqlite_rows+="| $n | $(rate "$n" "$t_ours") | $t_ours (runs:$ours) | $rss MB | $(rate "$n" "$t_cli") ($t_cli s) | 8,333 | $(echo "$n $t_ours" | awk '{printf "%.0f", $1 / $2 / 8333}')x |"$'\n'
  rm -f "$work/base.db"
done
rss_max=$(echo "$rss_list" | tr ' ' '\n' | grep -v '^$' | sort -n | tail -1); rss_min=$(echo "$rss_list" | tr ' ' '\n' | grep -v '^$' | sort -n | head -1)

echo "bench: PostgreSQL"
pg_start "$work" "-c shared_buffers=2GB -c max_wal_size=8GB -c fsync=off"
pg_fresh() { "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 TEMPLATE base" -c "CHECKPOINT"; sync; }
pg_hand_sql="ALTER TABLE events ALTER COLUMN created_at TYPE timestamptz USING created_at AT TIME ZONE '$zone', ALTER COLUMN updated_at TYPE timestamptz USING updated_at AT TIME ZONE '$zone'"
# The in-process workload calls back for each fresh copy.
cat > "$work/fresh-pg" <<SH
#!/usr/bin/env bash
set -e
${psql[*]} -d postgres -c "DROP DATABASE IF EXISTS \$1" -c "CREATE DATABASE \$1 TEMPLATE base" -c "CHECKPOINT" >/dev/null
sync
SH
chmod +x "$work/fresh-pg"
# Runs the in-process workload and prints "<hand median> (runs: …)|<ours median> (runs: …)|<ratio>".
session() {
  local out hand ours th to
  out=$("${bench[@]}" timezone-session "$@")
  hand=$(echo "$out" | awk '$1 == "hand" {printf " %s", $2}'); ours=$(echo "$out" | awk '$1 == "ours" {printf " %s", $2}')
  th=$(echo "$hand" | median); to=$(echo "$ours" | median)
  echo "$th (runs:$hand)|$to (runs:$ours)|$(ratio "$to" "$th")"
}
pg_hand_run() { pg_fresh hand; pg_hand+=" $(timeit "${psql[@]}" -d hand -c "$pg_hand_sql")"; }
pg_ours_run() { pg_fresh ours; pg_ours+=" $(timeit "${bench[@]}" timezone "postgres://postgres@127.0.0.1:$pg_port/ours" "$zone" 50000)"; }
pg_rows=""; pg_session_rows=""
for n in ${sizes//,/ }; do
  echo "bench: PostgreSQL $n rows"
  "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS base" -c "CREATE DATABASE base"
  "${datagen[@]}" --engine postgres --target "Host=127.0.0.1;Port=$pg_port;Database=base;Username=postgres" --rows "$n" >/dev/null
  "${psql[@]}" -d base -c "ALTER TABLE events ALTER COLUMN created_at TYPE timestamp USING created_at::timestamp, ALTER COLUMN updated_at TYPE timestamp USING updated_at::timestamp" -c "VACUUM ANALYZE events"
  pg_hand=""; pg_ours=""
  for i in $(seq 1 "$(runs_for "$n")"); do
    if [ $((i % 2)) -eq 1 ]; then pg_hand_run; pg_ours_run; else pg_ours_run; pg_hand_run; fi
  done
  t_pg_hand=$(echo "$pg_hand" | median); t_pg_ours=$(echo "$pg_ours" | median); r=$(ratio "$t_pg_ours" "$t_pg_hand")
  pg_rows+="| $n | $t_pg_hand (runs:$pg_hand) | $t_pg_ours (runs:$pg_ours) | $(rate "$n" "$t_pg_ours") | ${r}x | $(verdict "$r" 1.2) |"$'\n'
  if [ "$n" -le 2000000 ]; then
    IFS='|' read -r s_hand s_ours s_ratio < <(session "postgres://postgres@127.0.0.1:$pg_port/hand" "postgres://postgres@127.0.0.1:$pg_port/ours" "$zone" 50000 "$(runs_for "$n")" "$work/fresh-pg" "$pg_hand_sql")
    pg_session_rows+="| $n | $s_hand | $s_ours | ${s_ratio}x | $(verdict "$s_ratio" 1.2) |"$'\n'
  fi
done
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS base" -c "DROP DATABASE IF EXISTS hand" -c "DROP DATABASE IF EXISTS ours"

echo "bench: MariaDB"
my_start "$work" --innodb-buffer-pool-size=8G --innodb-log-file-size=2G
mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | "${my[@]}" mysql
# Wait until InnoDB has flushed its dirty pages and purged old row versions, so neither side pays for the other. The
# flush rate is raised for the wait only (at the default 200 pages/s a 1M-row copy takes 90 s to flush, at 20000 about
# 2 s), and set back before the timed run.
my_quiesce() {
  local io io_max
  read -r io io_max < <("${my[@]}" -N -e "SELECT @@innodb_io_capacity, @@innodb_io_capacity_max")
  "${my[@]}" -e "SET GLOBAL innodb_max_dirty_pages_pct = 0; SET GLOBAL innodb_io_capacity_max = 40000; SET GLOBAL innodb_io_capacity = 20000"
  for _ in $(seq 1 1200); do
    read -r dirty history < <("${my[@]}" -N -e "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'), (SELECT COUNT FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len')")
    [ "${dirty:-0}" -lt 200 ] && [ "${history:-0}" -lt 1000 ] && break
    sleep 0.2
  done
  "${my[@]}" -e "SET GLOBAL innodb_io_capacity = $io; SET GLOBAL innodb_io_capacity_max = $io_max; SET GLOBAL innodb_max_dirty_pages_pct = 90"
}
my_fresh() { "${my[@]}" -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1; CREATE TABLE $1.events LIKE base.events; INSERT INTO $1.events SELECT * FROM base.events;"; my_quiesce; }
my_hand_sql="UPDATE events SET created_at = CONVERT_TZ(created_at, '$zone', 'UTC'), updated_at = CONVERT_TZ(updated_at, '$zone', 'UTC')"
my_hand_run() { my_fresh hand; my_hand+=" $(timeit "${my[@]}" hand -e "$my_hand_sql")"; "${my[@]}" -e "DROP DATABASE hand"; }
{ echo '#!/usr/bin/env bash'; echo 'set -e'; declare -p my; declare -f my_quiesce my_fresh; echo 'my_fresh "$1" >/dev/null'; } > "$work/fresh-my"
chmod +x "$work/fresh-my"
my_ours_run() { my_fresh ours; my_ours+=" $(timeit "${bench[@]}" timezone "mariadb://b:bpw@127.0.0.1:$my_port/ours" "$zone" 50000)"; "${my[@]}" -e "DROP DATABASE ours"; }
my_rows=""; my_session_rows=""
for n in ${sizes//,/ }; do
  echo "bench: MariaDB $n rows"
  "${my[@]}" -e "DROP DATABASE IF EXISTS base; CREATE DATABASE base"
  MYSQL_PWD=bpw "${datagen[@]}" --engine mariadb --target "host=127.0.0.1;port=$my_port;database=base;user=b" --rows "$n" >/dev/null
  "${my[@]}" base -e "ALTER TABLE events MODIFY created_at DATETIME(6) NOT NULL, MODIFY updated_at DATETIME(6)"
  my_hand=""; my_ours=""
  for i in $(seq 1 "$(runs_for "$n")"); do
    if [ $((i % 2)) -eq 1 ]; then my_hand_run; my_ours_run; else my_ours_run; my_hand_run; fi
  done
  t_my_hand=$(echo "$my_hand" | median); t_my_ours=$(echo "$my_ours" | median); r=$(ratio "$t_my_ours" "$t_my_hand")
  my_rows+="| $n | $t_my_hand (runs:$my_hand) | $t_my_ours (runs:$my_ours) | $(rate "$n" "$t_my_ours") | ${r}x | $(verdict "$r" 1.2) |"$'\n'
  if [ "$n" -le 2000000 ]; then
    IFS='|' read -r s_hand s_ours s_ratio < <(session "mariadb://b:bpw@127.0.0.1:$my_port/hand" "mariadb://b:bpw@127.0.0.1:$my_port/ours" "$zone" 50000 "$(runs_for "$n")" "$work/fresh-my" "$my_hand_sql")
    my_session_rows+="| $n | $s_hand | $s_ours | ${s_ratio}x | $(verdict "$s_ratio" 1.2) |"$'\n'
    "${my[@]}" -e "DROP DATABASE IF EXISTS hand; DROP DATABASE IF EXISTS ours"
  fi
done

mkdir -p bench/results
cat > bench/results/timezone.md <<MD
# Timezone migration benchmark

Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`bench/run-timezone.sh $sizes $reps\` on one machine ($(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB),
side by side in one run. The events table has two naive local timestamp columns (created_at, updated_at), an index
on created_at and 0.1% DST-edge rows, in $zone. DbMigration runs with -Ambiguous Earlier -Nonexistent ShiftForward,
no backup, with its rollback record and its validation (row and NULL counts, the UTC format of every converted value,
a random sample converted back). Times are medians of $reps runs on fresh copies ($((3 * reps)) at 200k rows or fewer,
where fixed costs and run-to-run noise weigh most; one run above 2M rows), each side going first in turn; before each
PostgreSQL run the server checkpoints and the OS syncs, before each MariaDB run InnoDB flushes and purges. The
workload host is published with ReadyToRun images, as a Release build lays out the module. RSS is the process's peak
resident set.

The server engines are timed two ways, and the goals are judged on both:
- **fresh process**: each side timed from outside a new process, DbMigration's .NET start-up, first connection and
  discovery against the engine's own command-line client;
- **in one process**: both sides in one already-running process, as a PowerShell session runs the cmdlet after
  Import-Module (one untimed warm-up pair first; pooled connections are closed before each run, so each side opens a
  new connection). The hand-written statement goes through the same driver. Measured up to 2M rows; above that the
  fixed costs are a rounding error.

## SQLite

| Rows | DbMigration rows/s | DbMigration (s) | Peak RSS | sqlite3 \`UPDATE … strftime(…, 'utc')\` rows/s | V_Track seed (published) rows/s | DbMigration vs seed |
|---|---|---|---|---|---|---|
$sqlite_rows
Goal: at least 500,000 rows/s at 1M rows (60x the seed), validation included: **$(verdict_min "${sqlite_goal_rate:-0}" 500000)** (${sqlite_goal_rate:-not measured} rows/s).
Goal: peak RSS at most 150 MB and flat from 100k to 10M rows: **$(awk -v hi="$rss_max" -v lo="$rss_min" 'BEGIN { print (hi <= 150 && hi - lo <= 25 ? "met" : "NOT met") }')** ($rss_min-$rss_max MB).
The sqlite3 baseline is not equivalent: it silently shifts values in DST gaps and keeps no rollback record.

## PostgreSQL (timestamp columns)

Fresh process:

| Rows | Hand-written \`ALTER … TYPE timestamptz USING … AT TIME ZONE\` (s) | DbMigration (s) | DbMigration rows/s | Ratio | Goal (at most 1.2x) |
|---|---|---|---|---|---|
$pg_rows
In one process:

| Rows | Hand-written ALTER (s) | DbMigration (s) | Ratio | Goal (at most 1.2x) |
|---|---|---|---|---|
$pg_session_rows
## MariaDB (DATETIME(6) columns)

Fresh process:

| Rows | Hand-written \`UPDATE … CONVERT_TZ\` (s) | DbMigration (s) | DbMigration rows/s | Ratio | Goal (at most 1.2x) |
|---|---|---|---|---|---|
$my_rows
In one process:

| Rows | Hand-written UPDATE (s) | DbMigration (s) | Ratio | Goal (at most 1.2x) |
|---|---|---|---|---|
$my_session_rows
MD
cat bench/results/timezone.md
