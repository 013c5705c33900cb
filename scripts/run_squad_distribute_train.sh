#!/usr/bin/env bash
# LUKE on SQuAD v1.1, step 2 data-parallel (the LUKE seed's script name): scripts/launch_distributed.sh with
# run_finetune.py and configs/tasks/luke_squad_v1.yaml; the same command on every node, only the node rank
# differs (launcher options or variables: see scripts/launch_distributed.sh; RANK_TABLE_FILE for HCCL tables).
#   bash scripts/run_squad_distribute_train.sh [launcher options] WORKERS DEVICE_TARGET MODEL_DIR DATA_DIR DEV_FILE [key=value ...]
#   bash scripts/run_squad_distribute_train.sh 8 Ascend models/luke_large data/luke_squad/train data/squad/dev-v1.1.json
#   NODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash scripts/run_squad_distribute_train.sh 16 Ascend ...
# batch_size is per worker (the seed's 2). --dry_run (a launcher option) prints the plan, starts nothing.
set -euo pipefail
usage="usage: bash scripts/run_squad_distribute_train.sh [launcher options] WORKERS DEVICE_TARGET MODEL_DIR DATA_DIR DEV_FILE [key=value ...]"
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then echo "$usage"; exit 0; fi
OPTIONS=()
while [ $# -gt 0 ] && [[ $1 == --* ]]; do
  if [ "$1" = "--dry_run" ] || [[ $1 == *=* ]]; then OPTIONS+=("$1"); shift
  elif [ $# -ge 2 ]; then OPTIONS+=("$1" "$2"); shift 2
  else echo "$usage" >&2; exit 2
  fi
done
if [ $# -lt 5 ]; then echo "$usage" >&2; exit 2; fi
WORKERS=$1; DEVICE_TARGET=$2; MODEL_DIR=$(realpath "$3"); DATA_DIR=$(realpath "$4"); DEV_FILE=$(realpath "$5"); shift 5
HERE="$(dirname "$0")"
exec bash "$HERE/launch_distributed.sh" run_finetune.py "${OPTIONS[@]}" "$WORKERS" "$DEVICE_TARGET" \
  "$(realpath "$HERE/../configs/tasks/luke_squad_v1.yaml")" model_dir="$MODEL_DIR" data_dir="$DATA_DIR" \
  eval_file="$DEV_FILE" "$@"
