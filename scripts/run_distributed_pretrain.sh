#!/usr/bin/env bash
# Data-parallel pretraining through msrun; each rank reads its own shard, gradients are averaged.
#   bash scripts/run_distributed_pretrain.sh WORKERS DEVICE_TARGET CONFIG [key=value ...]
# Ascend with an HCCL rank table, as the model zoo does it (one process per device):
#   RANK_TABLE_FILE=/path/hccl_8p.json bash scripts/run_distributed_pretrain.sh 8 Ascend CONFIG
# Exit status 0 when every worker succeeds; otherwise non-zero, naming the failing rank's log.
if [ $# -lt 3 ]; then
  echo "usage: bash scripts/run_distributed_pretrain.sh WORKERS DEVICE_TARGET CONFIG [key=value ...]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/launch_distributed.sh" run_pretrain.py "$@"
