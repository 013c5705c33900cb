#!/usr/bin/env bash
# LUKE on SQuAD v1.1, step 1 (the LUKE seed's script name): training and dev features for a LUKE model
# directory, with the seed's window options (512 tokens, stride 128, questions of 64 tokens).
#   bash scripts/run_squad_data_process.sh MODEL_DIR SQUAD_DIR OUTPUT_DIR [--mention_db DIR] [create_data options ...]
#   bash scripts/run_squad_data_process.sh models/luke_large data/squad data/luke_squad --mention_db data/mentions
# SQUAD_DIR holds train-v1.1.json and dev-v1.1.json; OUTPUT_DIR/train and OUTPUT_DIR/dev are written by
# `create_data.py squad --split train|eval`. Further options (--mention_db, --overwrite, a later
# --max_seq_length ...) go to both calls unchanged. --dry_run first prints the two commands, runs nothing.
set -euo pipefail
usage="usage: bash scripts/run_squad_data_process.sh [--dry_run] MODEL_DIR SQUAD_DIR OUTPUT_DIR [--mention_db DIR] [create_data options ...]"
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then echo "$usage"; exit 0; fi
DRY_RUN=""
if [ "${1:-}" = "--dry_run" ]; then DRY_RUN=1; shift; fi
if [ $# -lt 3 ]; then echo "$usage" >&2; exit 2; fi
MODEL_DIR=$(realpath "$1"); SQUAD_DIR=$(realpath "$2"); OUTPUT_DIR=$(realpath -m "$3"); shift 3
cd "$(dirname "$0")/.."
source scripts/env.sh
install_requirements requirements.txt
for split in train dev; do
  command=(python create_data.py squad --input "$SQUAD_DIR/$split-v1.1.json" --model_dir "$MODEL_DIR"
           --output "$OUTPUT_DIR/$split" --split "$([ $split = train ] && echo train || echo eval)"
           --max_seq_length 512 --doc_stride 128 --max_query_length 64 "$@")
  if [ -n "$DRY_RUN" ]; then echo "${command[*]}"; else "${command[@]}"; fi
done
