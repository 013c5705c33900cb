#!/usr/bin/env bash
# Data-parallel training, shared by run_distributed_pretrain.sh and run_distributed_finetune.sh:
# msrun (HCCL on Ascend, NCCL on GPU, its own collectives on CPU) on one node or several, or one
# process per local device of an HCCL rank table (RANK_TABLE_FILE), as the model zoo does it.
#   bash scripts/launch_distributed.sh RUNNER [options] WORKERS DEVICE_TARGET CONFIG [key=value ...]
# Options (or variables): --local_workers (LOCAL_WORKERS, or NODES to split WORKERS evenly),
# --node_rank (NODE_RANK), --master_addr (MASTER_ADDR), --master_port (MASTER_PORT),
# --cluster_time_out (CLUSTER_TIME_OUT, seconds, 600), --log_dir (LOG_DIR), --dry_run.
# Exit status 0 when every worker succeeds; otherwise non-zero, naming the failing rank's log.
# The logic is in src/cluster/launch.py.
set -uo pipefail
source "$(dirname "$0")/env.sh"
install_requirements "$ROOT/requirements.txt"
exec python -m src.cluster.launch "$@"
