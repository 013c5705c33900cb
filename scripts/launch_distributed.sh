#!/usr/bin/env bash
# Data-parallel training through msrun (MindSpore's launcher: HCCL on Ascend, NCCL on GPU, its own
# collectives on CPU), shared by run_distributed_pretrain.sh and run_distributed_finetune.sh.
# Each rank reads its own shard; gradients are averaged.
#   bash scripts/launch_distributed.sh RUNNER WORKERS DEVICE_TARGET CONFIG [key=value ...]
# Ascend with an HCCL rank table, as the model zoo does it (one process per device): set RANK_TABLE_FILE.
# Exit status 0 when every worker succeeds; otherwise non-zero, naming the failing rank's log.
set -uo pipefail
if [ $# -lt 4 ]; then
  echo "usage: bash scripts/launch_distributed.sh RUNNER WORKERS DEVICE_TARGET CONFIG [key=value ...]" >&2
  exit 2
fi
RUNNER=$1; WORKERS=$2; DEVICE_TARGET=$3; CONFIG=$4; shift 4
CONFIG=$(realpath "$CONFIG")  # the scripts run from the repository root
cd "$(dirname "$0")/.."
source scripts/env.sh
install_requirements requirements.txt
LOG_DIR="${LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/msrun-logs.XXXXXX")}"
mkdir -p "$LOG_DIR"

report_failures() {
  local failed=0
  for log in "$LOG_DIR"/worker_*.log; do
    [ -f "$log" ] || continue
    if grep -qE "Traceback|^error:|ERROR\] ME|Error\b.*exit" "$log"; then
      rank=${log##*worker_}; echo "failed: rank ${rank%.log} -- see $log" >&2
      failed=1
    fi
  done
  return $failed
}

if [ -n "${RANK_TABLE_FILE:-}" ]; then
  export RANK_SIZE=$WORKERS
  pids=()
  for ((i = 0; i < WORKERS; i++)); do
    DEVICE_ID=$i RANK_ID=$i python "$RUNNER" --config "$CONFIG" \
      device_target="$DEVICE_TARGET" "$@" > "$LOG_DIR/worker_$i.log" 2>&1 &
    pids+=($!)
  done
  status=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "failed: rank $i -- see $LOG_DIR/worker_$i.log" >&2
      status=1
    fi
  done
  exit $status
fi

PORT=${MASTER_PORT:-$((8000 + RANDOM % 2000))}
msrun --worker_num="$WORKERS" --local_worker_num="$WORKERS" --master_port="$PORT" \
  --log_dir="$LOG_DIR" --join=True \
  "$RUNNER" --config "$CONFIG" device_target="$DEVICE_TARGET" "$@"
status=$?
if [ $status -ne 0 ]; then
  report_failures
  echo "msrun exited with status $status; logs in $LOG_DIR" >&2
  exit $status
fi
echo "logs in $LOG_DIR"
