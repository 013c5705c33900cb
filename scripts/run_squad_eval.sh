#!/usr/bin/env bash
# LUKE on SQuAD v1.1, step 3 (the LUKE seed's script name): a fine-tuned checkpoint (output_dir/model_best)
# scored on the raw dev file with the official v1.1 script's numbers; predictions go to OUTPUT_DIR.
#   bash scripts/run_squad_eval.sh MODEL_DIR DEV_FILE [OUTPUT_DIR] [run_eval options ...]
#   bash scripts/run_squad_eval.sh outputs/luke_squad_v1/model_best data/squad/dev-v1.1.json outputs/luke_squad_eval
# OUTPUT_DIR defaults to MODEL_DIR/eval; further options (--device_target Ascend, --batch_size 64, --out
# scores.json) go to run_eval.py.
set -euo pipefail
usage="usage: bash scripts/run_squad_eval.sh MODEL_DIR DEV_FILE [OUTPUT_DIR] [run_eval options ...]"
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then echo "$usage"; exit 0; fi
if [ $# -lt 2 ]; then echo "$usage" >&2; exit 2; fi
MODEL_DIR=$(realpath "$1"); DEV_FILE=$(realpath "$2"); shift 2
OUTPUT_DIR="$MODEL_DIR/eval"
if [ $# -gt 0 ] && [[ $1 != --* ]]; then OUTPUT_DIR=$(realpath -m "$1"); shift; fi
cd "$(dirname "$0")/.."
source scripts/env.sh
install_requirements requirements.txt
exec python run_eval.py --task squad_v1 --model_dir "$MODEL_DIR" --data "$DEV_FILE" --output_dir "$OUTPUT_DIR" "$@"
