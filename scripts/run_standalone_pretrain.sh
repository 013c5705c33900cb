#!/usr/bin/env bash
# Pretrain on one device.
#   bash scripts/run_standalone_pretrain.sh DEVICE_TARGET CONFIG [key=value ...]
#   bash scripts/run_standalone_pretrain.sh Ascend configs/tasks/pretrain_bert.yaml data_dir=/data/wiki
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/run_standalone_pretrain.sh DEVICE_TARGET CONFIG [key=value ...]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/launch_standalone.sh" run_pretrain.py "$@"
