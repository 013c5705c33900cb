#!/usr/bin/env bash
# Data-parallel pretraining; each rank reads its own shard, gradients are averaged. The same
# command on every node; only the node rank differs:
#   bash scripts/run_distributed_pretrain.sh [options] WORKERS DEVICE_TARGET CONFIG [key=value ...]
#   bash scripts/run_distributed_pretrain.sh 8 Ascend CONFIG                        # one node
#   NODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash scripts/run_distributed_pretrain.sh 16 Ascend CONFIG
#   RANK_TABLE_FILE=/path/hccl_16p.json bash scripts/run_distributed_pretrain.sh 16 Ascend CONFIG
# Options: see scripts/launch_distributed.sh. Exit status 0 when every worker succeeds;
# otherwise non-zero, naming the failing rank's log.
exec bash "$(dirname "$0")/launch_distributed.sh" run_pretrain.py "$@"
