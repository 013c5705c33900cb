#!/usr/bin/env bash
# LUKE on SQuAD v1.1, step 2 on one device (the LUKE seed's script name): run_finetune.py with
# configs/tasks/luke_squad_v1.yaml (the seed's hyper-parameters, entity table frozen).
#   bash scripts/run_squad_standalone_train.sh DEVICE_TARGET MODEL_DIR DATA_DIR DEV_FILE [key=value ...]
#   bash scripts/run_squad_standalone_train.sh Ascend models/luke_large data/luke_squad/train data/squad/dev-v1.1.json
# DATA_DIR: OUTPUT_DIR/train of run_squad_data_process.sh; DEV_FILE: the raw dev-v1.1.json scored while
# training. key=value settings override the config (output_dir=..., batch_size=...).
set -euo pipefail
usage="usage: bash scripts/run_squad_standalone_train.sh DEVICE_TARGET MODEL_DIR DATA_DIR DEV_FILE [key=value ...]"
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then echo "$usage"; exit 0; fi
if [ $# -lt 4 ]; then echo "$usage" >&2; exit 2; fi
DEVICE_TARGET=$1; MODEL_DIR=$(realpath "$2"); DATA_DIR=$(realpath "$3"); DEV_FILE=$(realpath "$4"); shift 4
HERE="$(dirname "$0")"
exec bash "$HERE/launch_standalone.sh" run_finetune.py "$DEVICE_TARGET" "$HERE/../configs/tasks/luke_squad_v1.yaml" \
  model_dir="$MODEL_DIR" data_dir="$DATA_DIR" eval_file="$DEV_FILE" "$@"
