#!/usr/bin/env bash
# Submits a scorenmf corpus run to Slurm: a job array of TASKS tasks (at most MAX_RUNNING at
# once), each running its shard of the manifest, then `scorenmf batch summarize` once every task
# has ended (--dependency=afterany: also after failed tasks). Prints the two job ids.
#
#   scripts/slurm/submit.sh MANIFEST OUTROOT TASKS [MAX_RUNNING] [-- run options]
#
# SCORENMF names the binary (default: scorenmf on the PATH); extra sbatch options go in
# SBATCH_OPTIONS (e.g. "--partition=short --mem=4G").
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 MANIFEST OUTROOT TASKS [MAX_RUNNING] [-- run options]" >&2
  exit 2
fi
manifest=$1
outroot=$2
tasks=$3
shift 3
throttle=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  throttle="%$1"
  shift
fi
here=$(cd "$(dirname "$0")" && pwd)
bin=${SCORENMF:-scorenmf}
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_OPTIONS:-} --export=ALL,SCORENMF="$bin" \
  --array="0-$((tasks - 1))$throttle" "$here/batch.sbatch" "$manifest" "$outroot" "$@")
# shellcheck disable=SC2086
summary=$(sbatch --parsable ${SBATCH_OPTIONS:-} --dependency="afterany:$array" \
  --job-name=scorenmf-summary --output="scorenmf-summary-%j.out" \
  --wrap="\"$bin\" batch summarize \"$outroot\"")
echo "$array $summary"
