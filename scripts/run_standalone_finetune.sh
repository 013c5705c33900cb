#!/usr/bin/env bash
# Fine-tune on one device.
#   bash scripts/run_standalone_finetune.sh DEVICE_TARGET CONFIG [key=value ...]
#   bash scripts/run_standalone_finetune.sh Ascend configs/tasks/squad_v1.yaml model_dir=models/bert_base data_dir=data/squad_v1_train
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/run_standalone_finetune.sh DEVICE_TARGET CONFIG [key=value ...]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/launch_standalone.sh" run_finetune.py "$@"
