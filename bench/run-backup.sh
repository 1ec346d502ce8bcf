#!/usr/bin/env bash
# Side-by-side backup and restore benchmarks, written to bench/results/backup.md:
#   SQLite (about 1 GB, 5M events rows): Backup-Database vs cp + sha256sum and the sqlite3 .backup CLI; compressed throughput;
#   the quickstart emergency rollback (Restore-MigrationBackup -Latest PreMigration on a 1,000-row events.db);
#   PostgreSQL (1M rows): backup vs pg_dump -Fc, restore vs pg_restore -j2 (into an empty database made beforehand, and
#   with --clean --create, which replaces the database as a restore by DbMigration does);
#   MariaDB (1M rows): backup vs mariadb-dump and mydumper -t 2;
#   both servers: DbMigration's built-in logical dump (-DumpMethod BuiltIn), backup and restore, beside the same baselines.
# Usage: bench/run-backup.sh [sqlite-rows] [server-rows] [runs]. Needs sqlite3, postgresql, mariadb-server, mydumper.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
sqlite_rows="${1:-5000000}"; server_rows="${2:-1000000}"; runs="${3:-3}"
work=$(mktemp -d /tmp/dbm-bench-backup-XXXXXX); chmod 755 "$work"
trap 'pkill -f "$work" 2>/dev/null || true; [ -n "${pg_ctl:-}" ] && runuser -u postgres -- "$pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1; sleep 1; rm -rf "$work"' EXIT
# The workload host is published with ReadyToRun images, as a Release build lays out the module.
dotnet publish -c Release --use-current-runtime --self-contained false -p:PublishReadyToRun=true bench/DbMigration.Bench -o bench/DbMigration.Bench/bin/publish >/dev/null; dotnet build -c Release bench/DbMigration.DataGen >/dev/null
bench=(dotnet bench/DbMigration.Bench/bin/publish/DbMigration.Bench.dll)
datagen=(dotnet bench/DbMigration.DataGen/bin/Release/net10.0/DbMigration.DataGen.dll)
now() { date +%s.%N; }
elapsed() { echo "$2 $1" | awk '{printf "%.3f", $1 - $2}'; }
timeit() { local t0; t0=$(now); "$@" >/dev/null 2>&1 || echo "bench: FAILED: $*" >&2; elapsed "$t0" "$(now)"; }

# ---- SQLite ----
db="$work/events.db"
echo "bench: generating $sqlite_rows SQLite rows"
"${datagen[@]}" --engine sqlite --target "$db" --rows "$sqlite_rows" >/dev/null
size=$(stat -c %s "$db"); size_mb=$(echo "$size" | awk '{printf "%.0f", $1/1048576}')
cat "$db" > /dev/null
cp_runs=(); cpsync_runs=(); cli_runs=(); ours_runs=(); fast_runs=(); small_runs=()
for r in $(seq 1 "$runs"); do
  cp_runs+=("$(timeit bash -c "cp '$db' '$work/copy.db' && sha256sum '$work/copy.db'")"); rm -f "$work/copy.db"
  cpsync_runs+=("$(timeit bash -c "cp '$db' '$work/copy.db' && sync '$work/copy.db' && sha256sum '$work/copy.db'")"); rm -f "$work/copy.db"
  cli_runs+=("$(timeit sqlite3 "$db" ".backup '$work/cli.db'")"); rm -f "$work/cli.db"
  ours_runs+=("$(timeit "${bench[@]}" backup "$db" "$work/repo" None)"); rm -rf "$work/repo"
  fast_runs+=("$(timeit "${bench[@]}" backup "$db" "$work/repo" Fast)"); rm -rf "$work/repo"
  small_runs+=("$(timeit "${bench[@]}" backup "$db" "$work/repo" Small)"); rm -rf "$work/repo"
done
m_cp=$(printf '%s\n' "${cp_runs[@]}" | median); m_cpsync=$(printf '%s\n' "${cpsync_runs[@]}" | median); m_cli=$(printf '%s\n' "${cli_runs[@]}" | median)
m_ours=$(printf '%s\n' "${ours_runs[@]}" | median); m_fast=$(printf '%s\n' "${fast_runs[@]}" | median); m_small=$(printf '%s\n' "${small_runs[@]}" | median)
r_cp=$(ratio "$m_ours" "$m_cp"); mbps_fast=$(echo "$size $m_fast" | awk '{printf "%.0f", $1/1048576/$2}'); mbps_small=$(echo "$size $m_small" | awk '{printf "%.0f", $1/1048576/$2}')

# The quickstart's emergency rollback.
qs="$work/quickstart/events.db"; mkdir -p "$work/quickstart"
"${datagen[@]}" --engine sqlite --target "$qs" --rows 1000 >/dev/null
qs_backup=$("${bench[@]}" backup "$qs" "$work/quickstart/migration_backups" None 2>&1 >/dev/null | tail -1)
qs_runs=()
for r in $(seq 1 "$runs"); do qs_runs+=("$(timeit "${bench[@]}" restore "$qs" "$qs_backup")"); done
m_qs=$(printf '%s\n' "${qs_runs[@]}" | median)

# ---- PostgreSQL ----
pg_start "$work" "-c shared_buffers=512MB -c max_wal_size=4GB"
"${psql[@]}" -d postgres -c "CREATE DATABASE bench"
echo "bench: generating $server_rows PostgreSQL rows"
"${datagen[@]}" --engine postgres --target "Host=127.0.0.1;Port=$pg_port;Database=bench;Username=postgres" --rows "$server_rows" >/dev/null
pg_target="postgres://postgres@127.0.0.1:$pg_port/bench"
# Each timed run starts on a settled server: the step before's dirty pages written out (by PostgreSQL and the OS)
# and its autovacuum done, so neither side pays for the other's work.
pg_quiet() {
  "${psql[@]}" -d postgres -c "CHECKPOINT"
  sync
  for _ in $(seq 1 300); do
    [ "$("${psql[@]}" -d postgres -At -c "SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && break
    sleep 0.1
  done
}
pgtime() { pg_quiet >/dev/null 2>&1; timeit "$@"; }
pgdump_runs=(); pgours_runs=(); pgrestore_runs=(); pgclean_runs=(); pgoursrestore_runs=(); pgtrusted_runs=(); pgbi_runs=(); pgbirestore_runs=(); pgfast_runs=()
"$pg_bin/pg_dump" -h 127.0.0.1 -p "$pg_port" -U postgres -Fc -f "$work/warm.dump" bench
for r in $(seq 1 "$runs"); do
  pgdump_runs+=("$(pgtime "$pg_bin/pg_dump" -h 127.0.0.1 -p "$pg_port" -U postgres -Fc -f "$work/bench.dump" bench)")
  rm -rf "$work/pgrepo"; pgours_runs+=("$(pgtime "${bench[@]}" backup "$pg_target" "$work/pgrepo" None)")
  "${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS restored" -c "CREATE DATABASE restored"
  pgrestore_runs+=("$(pgtime "$pg_bin/pg_restore" -h 127.0.0.1 -p "$pg_port" -U postgres -j2 -d restored "$work/bench.dump")")
  # The same job as ours: drop the database, create it and restore it (bench.dump is of the bench database).
  pgclean_runs+=("$(pgtime "$pg_bin/pg_restore" -h 127.0.0.1 -p "$pg_port" -U postgres -j2 --clean --create -d postgres "$work/bench.dump")")
  pg_backup=$(ls -d "$work/pgrepo/bench/"*/ | head -1)
  pgoursrestore_runs+=("$(pgtime "${bench[@]}" restore "$pg_target" "$pg_backup")")
  # The restore above verified this backup in full and recorded it: restoring it again is the verified-backup case.
  pgtrusted_runs+=("$(pgtime "${bench[@]}" restore "$pg_target" "$pg_backup")")
  rm -rf "$work/pgfastrepo"; pgfast_runs+=("$(pgtime "${bench[@]}" backup "$pg_target" "$work/pgfastrepo" Fast)")
  rm -rf "$work/pgbirepo"; pgbi_runs+=("$(pgtime "${bench[@]}" backup "$pg_target" "$work/pgbirepo" None BuiltIn)")
  pgbirestore_runs+=("$(pgtime "${bench[@]}" restore "$pg_target" "$(ls -d "$work/pgbirepo/bench/"*/ | head -1)")")
done
m_pgfast=$(printf '%s\n' "${pgfast_runs[@]}" | median); m_pgbi=$(printf '%s\n' "${pgbi_runs[@]}" | median);
size_mib() { du -sm --apparent-size "$@" | awk '{s += $1} END {print s}'; }
sz_pgdump=$(size_mib "$work/bench.dump"); sz_pgours=$(size_mib "$work"/pgrepo/bench/*/database.pgdump*); sz_pgfast=$(size_mib "$work"/pgfastrepo/bench/*/database.pgdump*) m_pgbirestore=$(printf '%s\n' "${pgbirestore_runs[@]}" | median)
m_pgdump=$(printf '%s\n' "${pgdump_runs[@]}" | median); m_pgours=$(printf '%s\n' "${pgours_runs[@]}" | median)
m_pgrestore=$(printf '%s\n' "${pgrestore_runs[@]}" | median); m_pgoursrestore=$(printf '%s\n' "${pgoursrestore_runs[@]}" | median); m_pgtrusted=$(printf '%s\n' "${pgtrusted_runs[@]}" | median); r_pgtrusted=$(ratio "$m_pgtrusted" "$m_pgrestore")
r_pgdump=$(ratio "$m_pgours" "$m_pgdump"); r_pgrestore=$(ratio "$m_pgoursrestore" "$m_pgrestore")
m_pgclean=$(printf '%s\n' "${pgclean_runs[@]}" | median); r_pgtrusted_clean=$(ratio "$m_pgtrusted" "$m_pgclean"); r_pgrestore_clean=$(ratio "$m_pgoursrestore" "$m_pgclean")
pg_version=$("${psql[@]}" -d postgres -At -c "SHOW server_version")

# ---- MariaDB ----
my_start "$work" --innodb-buffer-pool-size=1G --innodb-log-file-size=512M
"${my[@]}" -e "CREATE DATABASE bench"
echo "bench: generating $server_rows MariaDB rows"
MYSQL_PWD=bpw "${datagen[@]}" --engine mariadb --target "host=127.0.0.1;port=$my_port;database=bench;user=b" --rows "$server_rows" >/dev/null
my_target="mariadb://b:bpw@127.0.0.1:$my_port/bench"
mydump_runs=(); mydumper_runs=(); myours_runs=(); mybi_runs=(); myload_runs=(); mybirestore_runs=()
for r in $(seq 1 "$runs"); do
  mydump_runs+=("$(timeit bash -c "MYSQL_PWD=bpw mariadb-dump --no-defaults -h 127.0.0.1 -P $my_port -u b --single-transaction --routines --triggers --events --hex-blob bench > '$work/my.sql'")")
  rm -rf "$work/mydumper"; mydumper_runs+=("$(timeit mydumper -h 127.0.0.1 -P "$my_port" -u b -p bpw -B bench -t 2 -o "$work/mydumper")")
  rm -rf "$work/myrepo"; myours_runs+=("$(timeit "${bench[@]}" backup "$my_target" "$work/myrepo" None)")
  rm -rf "$work/mybirepo"; mybi_runs+=("$(timeit "${bench[@]}" backup "$my_target" "$work/mybirepo" None BuiltIn)")
  "${my[@]}" -e "DROP DATABASE IF EXISTS loaded; CREATE DATABASE loaded"
  myload_runs+=("$(timeit bash -c "MYSQL_PWD=bpw mariadb --no-defaults -h 127.0.0.1 -P $my_port -u b --default-character-set=utf8mb4 --binary-mode loaded < '$work/my.sql'")")
  mybirestore_runs+=("$(timeit "${bench[@]}" restore "$my_target" "$(ls -d "$work/mybirepo/bench/"*/ | head -1)")")
done
m_mybi=$(printf '%s\n' "${mybi_runs[@]}" | median); m_myload=$(printf '%s\n' "${myload_runs[@]}" | median); m_mybirestore=$(printf '%s\n' "${mybirestore_runs[@]}" | median)
m_mydump=$(printf '%s\n' "${mydump_runs[@]}" | median); m_mydumper=$(printf '%s\n' "${mydumper_runs[@]}" | median); m_myours=$(printf '%s\n' "${myours_runs[@]}" | median)
my_version=$("${my[@]}" -N -e "SELECT VERSION()")

mkdir -p bench/results
cat > bench/results/backup.md <<MD
# Backup benchmark

Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`bench/run-backup.sh $sqlite_rows $server_rows $runs\`, side by side in one run on one machine
($(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM). Every figure is the median of $runs runs, each a fresh process timed
from outside (so DbMigration's figures include .NET start-up; the workload host is published with ReadyToRun images, as a
Release build lays out the module). Each PostgreSQL run starts on a settled server: a CHECKPOINT and an OS sync, and no autovacuum at work. DbMigration's backups include everything a backup
does here: a consistent snapshot, per-table row counts and content hashes, SHA-256 of every file, fsync, and the
atomic publish into the catalog.

## SQLite: $sqlite_rows events rows, $size_mb MiB

| Workload | Baseline | Baseline (s) | DbMigration (s) | Ratio | Goal | Verdict |
|---|---|---|---|---|---|---|
| Full backup, uncompressed | \`cp\` then \`sha256sum\` | $m_cp | $m_ours | ${r_cp}x | at most 1.5x \`cp\` | $(verdict "$r_cp" 1.5) |
| | \`cp\`, \`sync\`, \`sha256sum\` (same durability as ours) | $m_cpsync | $m_ours | $(ratio "$m_ours" "$m_cpsync")x | | |
| | \`sqlite3 .backup\` | $m_cli | $m_ours | $(ratio "$m_ours" "$m_cli")x | | |
| Compressed backup, \`-Compress Fast\` | | | $m_fast | $mbps_fast MiB/s | at least 150 MB/s | $(awk -v m="$mbps_fast" 'BEGIN { print (m * 1.048576 >= 150 ? "met" : "NOT met") }') |
| Compressed backup, \`-Compress Small\` | | | $m_small | $mbps_small MiB/s | | |
| Emergency rollback of the quickstart events.db (1,000 rows): \`Restore-MigrationBackup -Latest\` without safety backup | | | $m_qs | | seconds | $(awk -v t="$m_qs" 'BEGIN { print (t < 10 ? "met" : "NOT met") }') |

## PostgreSQL $pg_version: $server_rows events rows

| Workload | Baseline | Baseline (s) | DbMigration (s) | Ratio | Goal | Verdict |
|---|---|---|---|---|---|---|
| Backup (\`-Compress None\`: pg_dump -Fc -Z0 and the content hashes in one snapshot; $sz_pgours MiB vs pg_dump's $sz_pgdump MiB) | \`pg_dump -Fc\` | $m_pgdump | $m_pgours | ${r_pgdump}x | at most 1.1x | $(verdict "$r_pgdump" 1.1) |
| Backup, \`-Compress Fast\` ($sz_pgfast MiB) | \`pg_dump -Fc\` | $m_pgdump | $m_pgfast | $(ratio "$m_pgfast" "$m_pgdump")x | | |
| Restore of a backup already verified in full with these files (the restore before verified it): checksums, into a new database, row counts (taken as the rows load), swap | \`pg_restore -j2 --clean --create\` (replaces the database, as ours does) | $m_pgclean | $m_pgtrusted | ${r_pgtrusted_clean}x | at most 1.1x | $(verdict "$r_pgtrusted_clean" 1.1) |
| | \`pg_restore -j2\` into an empty database made beforehand (not timed) | $m_pgrestore | $m_pgtrusted | ${r_pgtrusted}x | at most 1.1x | $(verdict "$r_pgtrusted" 1.1) |
| Restore of a backup not yet verified: checksums, into a new database, amcheck, counts and content hashes, swap | \`pg_restore -j2 --clean --create\` | $m_pgclean | $m_pgoursrestore | ${r_pgrestore_clean}x | at most 1.1x | $(verdict "$r_pgrestore_clean" 1.1) |
| | \`pg_restore -j2\` into an empty database made beforehand (not timed) | $m_pgrestore | $m_pgoursrestore | ${r_pgrestore}x | at most 1.1x | $(verdict "$r_pgrestore" 1.1) |
| Backup, built-in dump (\`-DumpMethod BuiltIn\`, no pg_dump) | \`pg_dump -Fc\` | $m_pgdump | $m_pgbi | $(ratio "$m_pgbi" "$m_pgdump")x | (no goal) | |
| Restore of the built-in dump (DbMigration's loader, then the same checks and swap) | \`pg_restore -j2\` into an empty database | $m_pgrestore | $m_pgbirestore | $(ratio "$m_pgbirestore" "$m_pgrestore")x | (no goal) | |

## MariaDB $my_version: $server_rows events rows

| Workload | Baseline | Baseline (s) | DbMigration (s) | Ratio to mariadb-dump |
|---|---|---|---|---|
| Backup | \`mariadb-dump --single-transaction\` | $m_mydump | $m_myours | $(ratio "$m_myours" "$m_mydump")x |
| | \`mydumper -t 2\` | $m_mydumper | | |
| Backup, built-in dump (\`-DumpMethod BuiltIn\`, no mariadb-dump) | \`mariadb-dump --single-transaction\` | $m_mydump | $m_mybi | $(ratio "$m_mybi" "$m_mydump")x |
| Restore of the built-in dump (DbMigration's loader, integrity check, counts and hashes, swap) | \`mariadb\` CLI loading the mariadb-dump file into an empty database | $m_myload | $m_mybirestore | $(ratio "$m_mybirestore" "$m_myload")x |

Raw runs (seconds): cp+sha256 ${cp_runs[*]}; cp+sync+sha256 ${cpsync_runs[*]}; sqlite3 .backup ${cli_runs[*]}; ours ${ours_runs[*]};
ours Fast ${fast_runs[*]}; ours Small ${small_runs[*]}; quickstart rollback ${qs_runs[*]}; pg_dump ${pgdump_runs[*]}; ours pg ${pgours_runs[*]}; ours pg Fast ${pgfast_runs[*]};
pg_restore ${pgrestore_runs[*]}; pg_restore --clean --create ${pgclean_runs[*]}; ours pg restore ${pgoursrestore_runs[*]}; ours pg restore of the verified backup ${pgtrusted_runs[*]}; mariadb-dump ${mydump_runs[*]}; mydumper ${mydumper_runs[*]}; ours mariadb ${myours_runs[*]};
built-in pg ${pgbi_runs[*]}; built-in pg restore ${pgbirestore_runs[*]}; built-in mariadb ${mybi_runs[*]}; mariadb load ${myload_runs[*]}; built-in mariadb restore ${mybirestore_runs[*]}.
MD
cat bench/results/backup.md
