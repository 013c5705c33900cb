#!/usr/bin/env bash
# Train on one device with RUNNER (run_pretrain.py or run_finetune.py); shared by run_standalone_*.sh.
#   bash scripts/launch_standalone.sh RUNNER DEVICE_TARGET CONFIG [key=value ...]
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash scripts/launch_standalone.sh RUNNER DEVICE_TARGET CONFIG [key=value ...]" >&2
  exit 2
fi
RUNNER=$1; DEVICE_TARGET=$2; CONFIG=$3; shift 3
CONFIG=$(realpath "$CONFIG")  # the scripts run from the repository root
cd "$(dirname "$0")/.."
source scripts/env.sh
install_requirements requirements.txt
exec python "$RUNNER" --config "$CONFIG" device_target="$DEVICE_TARGET" "$@"
