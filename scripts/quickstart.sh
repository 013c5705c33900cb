#!/usr/bin/env bash
# Quickstart: pretrain a small BERT from scratch on CPU with nothing downloaded.
#   bash scripts/quickstart.sh                  # corpus: the Python standard library's docstrings
#   bash scripts/quickstart.sh --corpus PATH..  # the same pipeline on your own text
# Steps: corpus -> WordPiece vocabulary -> MindRecord -> pretraining -> held-out MLM accuracy
# -> MINDIR export -> a fill-in-the-blank prediction by the exported graph.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=()
if [ "${1:-}" = "--corpus" ]; then
  shift
  for path in "$@"; do CORPUS+=("$(realpath "$path")"); done
  [ ${#CORPUS[@]} -gt 0 ] || { echo "usage: bash scripts/quickstart.sh [--corpus PATH ...]" >&2; exit 2; }
fi
source scripts/env.sh
install_requirements requirements.txt
OUT=outputs/quickstart
mkdir -p "$OUT"

echo "== 1/5 corpus"
python scripts/quickstart_corpus.py --output "$OUT/corpus" ${CORPUS[@]+--corpus "${CORPUS[@]}"}
echo "== 2/5 WordPiece vocabulary (4000)"
python create_data.py vocab --input "$OUT/corpus/train.txt" --output "$OUT/vocab" \
  --type wordpiece --vocab_size 4000 --overwrite
echo "== 3/5 MindRecord (NSP, static masking, 64 tokens)"
DATA_OPTS=(--model_dir "$OUT/vocab" --max_seq_length 64 --max_predictions_per_seq 10 --overwrite)
python create_data.py pretrain --input "$OUT/corpus/train.txt" --output "$OUT/data_train" \
  --dupe_factor 3 --workers 2 "${DATA_OPTS[@]}"
python create_data.py pretrain --input "$OUT/corpus/heldout.txt" --output "$OUT/data_eval" \
  --dupe_factor 1 "${DATA_OPTS[@]}"
echo "== 4/5 pretraining (configs/tasks/pretrain_quickstart.yaml)"
python run_pretrain.py --config configs/tasks/pretrain_quickstart.yaml --no_resume
python - "$OUT/run" <<'PY'
import json, os, sys
run = sys.argv[1]
evals = [r for r in map(json.loads, open(os.path.join(run, "metrics.jsonl"))) if "eval_mlm_accuracy" in r]
first, last = evals[0], evals[-1]
print(f"held-out MLM accuracy: {last['eval_mlm_accuracy']:.3f} at step {last['step']} "
      f"(step {first['step']}: {first['eval_mlm_accuracy']:.3f}; always guessing the most "
      f"frequent masked token: {last['eval_mlm_baseline']:.3f})")
print(f"model directory: {os.path.realpath(os.path.join(run, 'model_last'))}")
print(f"metrics: {os.path.join(run, 'metrics.jsonl')}   plot: {os.path.join(run, 'metrics.png')}")
PY
echo "== 5/5 export to MINDIR, fill in a blank with the exported graph"
python export.py --model_dir "$OUT/run/model_last" --head masked_lm --file_format MINDIR \
  --file_name "$OUT/export/bert_mini" --seq_length 64
python scripts/quickstart_blank.py --model_dir "$OUT/run/model_last" \
  --heldout "$OUT/corpus/heldout.txt" --output "$OUT/export/blank.txt"
python predict.py --model "$OUT/export/bert_mini.mindir" --input "$OUT/export/blank.txt" \
  --output "$OUT/export/blank_predictions.jsonl"
python - "$OUT/export" <<'PY'
import json, os, sys
folder = sys.argv[1]
answer = open(os.path.join(folder, "blank_answer.txt"), encoding="utf-8").read().strip()
result = json.loads(open(os.path.join(folder, "blank_predictions.jsonl"), encoding="utf-8").readline())
top = ", ".join(f"{c['token']} ({c['probability']:.2f})" for c in result["masks"][0])
print(f"held-out sentence: {result['text']}")
print(f"the exported graph's top tokens for [MASK]: {top}   (the hidden word: {answer})")
print(f"exported model: {os.path.realpath(os.path.join(folder, 'bert_mini.mindir'))} (+ bert_mini.json)")
PY
