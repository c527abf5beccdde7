#!/usr/bin/env bash
# The Slurm test: a single-node cluster on this machine (munged, slurmctld, slurmd -N localhost;
# no systemd, no cgroups, no accounting), a small manifest with one bad row run as a job array of
# 3 tasks through scripts/slurm/submit.sh, then checks: every good row's outputs, the bad row's
# failure, the summary, and that a resubmission skips every row. Fails loudly when the daemons
# cannot start. Needs Debian's slurmctld, slurmd, slurm-client and munge, and the release binary
# (cargo build --release). Stops the daemons by their pid files on exit.
#
#   scripts/slurm/test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/target/release/scorenmf"
[ -x "$bin" ] || { echo "slurm test: build first (cargo build --release)" >&2; exit 1; }
for tool in munged slurmctld slurmd sbatch squeue sinfo; do
  command -v "$tool" >/dev/null || { echo "slurm test: $tool is missing (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 1; }
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
work=$(mktemp -d /tmp/scorenmf-slurm-XXXXXX)
chmod 755 "$work"
conf="$work/slurm.conf"
cleanup() {
  for pid in "$work/slurmd.pid" "$work/slurmctld.pid" /run/munge/scorenmf-test.pid; do
    [ -f "$pid" ] && $sudo kill "$(cat "$pid")" 2>/dev/null || true
  done
  sleep 1
}
trap cleanup EXIT
fail() { echo "slurm test FAILED: $*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; exit 1; }

# munge, as its own user.
$sudo mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || $sudo dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
$sudo chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
$sudo chmod 700 /etc/munge && $sudo chmod 400 /etc/munge/munge.key
munge_pid=/run/munge/scorenmf-test.pid
$sudo runuser -u munge -- munged --pid-file="$munge_pid" --log-file=/var/log/munge/scorenmf-test.log --force \
  || fail "munged did not start"
sleep 1
munge -n >/dev/null || fail "munge does not work"

cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
cat > "$conf" <<CONF
ClusterName=scorenmf-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$work/jobcomp.txt
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
# No cgroup.conf: no cgroup plugin is loaded with proctrack/linuxproc and task/none.
mkdir -p "$work/state" "$work/spool"
export SLURM_CONF="$conf"
$sudo env SLURM_CONF="$conf" slurmctld -f "$conf" || fail "slurmctld did not start"
$sudo env SLURM_CONF="$conf" slurmd -N localhost -f "$conf" || fail "slurmd did not start"
for _ in $(seq 60); do
  state=$(sinfo -h -N -o '%t' 2>/dev/null | head -1 || true)
  [ "$state" = "idle" ] && break
  sleep 1
done
[ "$state" = "idle" ] || fail "the node is not idle (state: '${state:-none}')"

# The corpus: the example under three names, and a row whose recording does not exist.
data="$root/data"
manifest="$work/corpus.csv"
{
  echo "name,audio,score,reference_notes"
  for n in a b c; do
    echo "$n,$data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav,$data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv,$data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv"
  done
  echo "bad,$work/missing.wav,$data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv,"
} > "$manifest"
out="$work/out"
cd "$work"
wait_for() {
  for _ in $(seq 300); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 1
  done
  fail "jobs $1 did not finish"
}
read -r array summary < <(SCORENMF="$bin" SBATCH_OPTIONS="--cpus-per-task=1 --mem=500M" \
  "$root/scripts/slurm/submit.sh" "$manifest" "$out" 3 2 -- --by instrument)
wait_for "$array,$summary"
for n in a b c; do
  for f in batch.json notes.csv notes.json run.json stems/instrument/rh.wav; do
    [ -f "$out/$n/$f" ] || fail "row $n has no $f"
  done
done
[ ! -e "$out/bad" ] || fail "the bad row has a folder"
grep -q "missing.wav" "$out/logs/bad.log" || fail "the bad row's log does not name its recording"
grep -q "^5,bad," "$out/failures.csv" || fail "failures.csv does not list the bad row"
[ -f "$out/summary.csv" ] || fail "no summary (the summary job)"
[ "$(grep -c '^[abc],' "$out/summary.csv")" -eq 3 ] || fail "the summary does not hold the three rows"
# Each task's exit code, from jobcomp: the task with the bad row failed, the others did not.
grep -q "JobState=FAILED" "$work/jobcomp.txt" || fail "no task failed (the bad row's should)"
[ "$(grep -c "JobState=COMPLETED" "$work/jobcomp.txt")" -ge 3 ] || fail "fewer than 3 jobs completed"
marker=$(sha256sum "$out/a/batch.json")

# A resubmission skips every row.
read -r array2 summary2 < <(SCORENMF="$bin" SBATCH_OPTIONS="--cpus-per-task=1 --mem=500M" \
  "$root/scripts/slurm/submit.sh" "$manifest" "$out" 3 -- --by instrument)
wait_for "$array2,$summary2"
[ "$marker" = "$(sha256sum "$out/a/batch.json")" ] || fail "row a ran again"
skipped=$(cat scorenmf-batch-"$array2"_*.out | grep -c "skipped" || true)
[ "$skipped" -eq 4 ] || fail "the resubmission skipped $skipped rows, not 4: $(cat scorenmf-batch-"$array2"_*.out)"
echo "slurm test passed: 3 tasks, 3 rows done, 1 failed, summary written, resubmission skipped all 4"
