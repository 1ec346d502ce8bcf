#!/usr/bin/env bash
# Restore of a verified PostgreSQL backup timed in one running process, as a PowerShell session runs
# Restore-MigrationBackup, beside pg_restore -j2 started as a process from that same process (as the user would start
# it from the session), written to bench/results/restore-session.md. bench/run-backup.sh times each side as a fresh
# process instead; this one leaves out DbMigration's .NET start-up, which a session pays once, at Import-Module.
#   bench/run-restore-session.sh [rows] [runs]
# Bench host workload restore-session: one untimed warm-up pair (its restore verifies the backup in full, so every
# timed restore is of a verified backup), then [runs] pairs taking turns to go first, each on a settled server.
# Where pwsh exists, bench/restore-session.ps1 runs the same pairs through the cmdlet in a real pwsh session.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rows="${1:-1000000}"; runs="${2:-7}"
work=$(mktemp -d /tmp/dbm-bench-restore-XXXXXX); chmod 755 "$work"
trap '[ -n "${pg_ctl:-}" ] && runuser -u postgres -- "$pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1; sleep 1; rm -rf "$work"' EXIT
# The workload host is published with ReadyToRun images, as a Release build lays out the module.
dotnet publish -c Release --use-current-runtime --self-contained false -p:PublishReadyToRun=true bench/DbMigration.Bench -o bench/DbMigration.Bench/bin/publish >/dev/null; dotnet build -c Release bench/DbMigration.DataGen >/dev/null
export PATH="$PATH:$HOME/.dotnet/tools"
have_pwsh=$(command -v pwsh >/dev/null 2>&1 && echo yes || echo no)
[ "$have_pwsh" = yes ] && dotnet build -c Release src/DbMigration.ModuleLoader >/dev/null && dotnet build -c Release src/DbMigration.PowerShell >/dev/null
bench=(dotnet bench/DbMigration.Bench/bin/publish/DbMigration.Bench.dll)
datagen=(dotnet bench/DbMigration.DataGen/bin/Release/net10.0/DbMigration.DataGen.dll)

# The same server settings as bench/run-backup.sh.
pg_start "$work" "-c shared_buffers=512MB -c max_wal_size=4GB"
"${psql[@]}" -d postgres -c "CREATE DATABASE bench"
echo "bench: generating $rows PostgreSQL rows"
"${datagen[@]}" --engine postgres --target "Host=127.0.0.1;Port=$pg_port;Database=bench;Username=postgres" --rows "$rows" >/dev/null
pg_target="postgres://postgres@127.0.0.1:$pg_port/bench"
"${bench[@]}" backup "$pg_target" "$work/pgrepo" None >/dev/null
backup=$(ls -d "$work/pgrepo/bench/"*/ | head -1)
"$pg_bin/pg_dump" -h 127.0.0.1 -p "$pg_port" -U postgres -Fc -f "$work/bench.dump" bench

# Each timed run starts on a settled server: dirty pages written out (by PostgreSQL and the OS), autovacuum done.
cat > "$work/settle" <<SH
#!/usr/bin/env bash
set -e
${psql[*]} -d postgres -c "CHECKPOINT" >/dev/null
sync
for _ in \$(seq 1 300); do
  [ "\$(${psql[*]} -d postgres -At -c "SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && break
  sleep 0.1
done
SH
# For pg_restore into an empty database made beforehand (not timed).
{ cat "$work/settle"; echo "${psql[*]} -d postgres -c 'DROP DATABASE IF EXISTS restored' -c 'CREATE DATABASE restored' >/dev/null"; } > "$work/settle-empty"
chmod +x "$work/settle" "$work/settle-empty"

# Prints "<hand median> (runs: …)|<ours median> (runs: …)|<ratio>".
session() {
  local out hand ours th to
  out=$("${bench[@]}" restore-session "$pg_target" "$backup" "$runs" "$@")
  hand=$(echo "$out" | awk '$1 == "hand" {printf " %s", $2}'); ours=$(echo "$out" | awk '$1 == "ours" {printf " %s", $2}')
  th=$(echo "$hand" | median); to=$(echo "$ours" | median)
  echo "$th (runs:$hand)|$to (runs:$ours)|$(ratio "$to" "$th")"
}
# The same, through Restore-MigrationBackup in a real pwsh session (Release module layout).
session_pwsh() {
  local out hand ours th to
  local settle="$1"; shift
  out=$(pwsh -NoProfile -NonInteractive -File bench/restore-session.ps1 -Target "$pg_target" -BackupPath "$backup" -Runs "$runs" -Settle "$settle" -Baseline "$*")
  hand=$(echo "$out" | awk '$1 == "hand" {printf " %s", $2}'); ours=$(echo "$out" | awk '$1 == "ours" {printf " %s", $2}')
  th=$(echo "$hand" | median); to=$(echo "$ours" | median)
  echo "$th (runs:$hand)|$to (runs:$ours)|$(ratio "$to" "$th")"
}
echo "bench: in one process, against pg_restore --clean --create"
IFS='|' read -r c_hand c_ours c_ratio < <(session "$work/settle" "$pg_bin/pg_restore" -h 127.0.0.1 -p "$pg_port" -U postgres -j2 --clean --create -d postgres "$work/bench.dump")
echo "bench: in one process, against pg_restore into an empty database"
IFS='|' read -r e_hand e_ours e_ratio < <(session "$work/settle-empty" "$pg_bin/pg_restore" -h 127.0.0.1 -p "$pg_port" -U postgres -j2 -d restored "$work/bench.dump")
pwsh_rows="(pwsh not installed: no rows)"
if [ "$have_pwsh" = yes ]; then
  echo "bench: in a pwsh session, against pg_restore --clean --create"
  IFS='|' read -r pc_hand pc_ours pc_ratio < <(session_pwsh "$work/settle" "$pg_bin/pg_restore" -h 127.0.0.1 -p "$pg_port" -U postgres -j2 --clean --create -d postgres "$work/bench.dump")
  echo "bench: in a pwsh session, against pg_restore into an empty database"
  IFS='|' read -r pe_hand pe_ours pe_ratio < <(session_pwsh "$work/settle-empty" "$pg_bin/pg_restore" -h 127.0.0.1 -p "$pg_port" -U postgres -j2 -d restored "$work/bench.dump")
  pwsh_rows="| pwsh $(pwsh -NoProfile -c '$PSVersionTable.PSVersion.ToString()') session, \`Restore-MigrationBackup\`: \`pg_restore -j2 --clean --create\` | $pc_hand | $pc_ours | ${pc_ratio}x | $(verdict "$pc_ratio" 1.1) |
| pwsh session, \`Restore-MigrationBackup\`: \`pg_restore -j2\` into an empty database made beforehand (not timed) | $pe_hand | $pe_ours | ${pe_ratio}x | $(verdict "$pe_ratio" 1.1) |"
fi
pg_version=$("${psql[@]}" -d postgres -At -c "SHOW server_version")

mkdir -p bench/results
cat > bench/results/restore-session.md <<MD
# Verified PostgreSQL restore, in one running process

Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`bench/run-restore-session.sh $rows $runs\` on one machine ($(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB), PostgreSQL $pg_version,
$rows events rows, the server settings of \`bench/run-backup.sh\`. DbMigration restores (no safety backup) from one
already-running process, as a PowerShell session runs \`Restore-MigrationBackup\` after Import-Module; \`pg_restore\`
is started as a process from that same process, as the user would start it from the session. One untimed warm-up
pair first: its restore verifies the backup in full (amcheck, counts and content hashes) and records it, so every
timed restore is of a verified backup (checksums, into a new database, row counts taken as the rows load, swap).
Times are medians of $runs runs, the sides taking turns to go first, each after a checkpoint, an OS sync and
autovacuum. \`bench/results/backup.md\` times the same restores with each side in a fresh process.

| Baseline | Baseline (s) | DbMigration (s) | Ratio | Goal (at most 1.1x) |
|---|---|---|---|---|
| \`pg_restore -j2 --clean --create\` (replaces the database, as ours does) | $c_hand | $c_ours | ${c_ratio}x | $(verdict "$c_ratio" 1.1) |
| \`pg_restore -j2\` into an empty database made beforehand (not timed) | $e_hand | $e_ours | ${e_ratio}x | $(verdict "$e_ratio" 1.1) |
$pwsh_rows

The first two rows run the restore service from the bench host (\`bench/DbMigration.Bench\`); the pwsh rows run the
cmdlet itself, \`Restore-MigrationBackup -BackupPath <backup> -SkipSafetyBackup\`, in one pwsh session after
Import-Module (\`bench/restore-session.ps1\`), with \`pg_restore\` started from that session.
MD
cat bench/results/restore-session.md
