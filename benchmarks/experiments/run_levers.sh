#!/bin/bash
# Each lever measured alone against the peer at bert-8x128 (inference + train step).
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
OUT=${OUT:-/tmp/levers}
mkdir -p $OUT
run() {  # name, extra args...
  name=$1; shift
  $PY benchmarks/bench_model.py --rows bert-8x128 --repeats 2 --warmup 0 --no-memory \
      --out $OUT/$name "$@" > $OUT/$name.log 2>&1
  echo "$name $(grep -E '^  ours' $OUT/$name.log | tr '\n' ' ')"
}
for lever in "$@"; do
  case $lever in
    baseline*) run $lever ;;
    O1) run O1 --jit-level O1 ;;
    graph_kernel) run graph_kernel --context enable_graph_kernel=True ;;
    ms_threads1) run ms_threads1 --ms-threads 1 ;;
    interop1) run interop1 --context inter_op_parallel_num=1 ;;
    *) run $lever --variant $lever ;;
  esac
done
