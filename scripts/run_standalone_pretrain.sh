#!/usr/bin/env bash
# Pretrain on one device.
#   bash scripts/run_standalone_pretrain.sh DEVICE_TARGET CONFIG [key=value ...]
#   bash scripts/run_standalone_pretrain.sh Ascend configs/tasks/pretrain_bert.yaml data_dir=/data/wiki
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/run_standalone_pretrain.sh DEVICE_TARGET CONFIG [key=value ...]" >&2
  exit 2
fi
DEVICE_TARGET=$1; CONFIG=$2; shift 2
CONFIG=$(realpath "$CONFIG")  # the scripts run from the repository root
cd "$(dirname "$0")/.."
source scripts/env.sh
install_requirements requirements.txt
exec python run_pretrain.py --config "$CONFIG" device_target="$DEVICE_TARGET" "$@"
