#!/bin/bash
# bench_ab.py for each lever: "MODE:LEVER" items; LEVER is a variant name, jit_O1 or ctx:k=v
cd "$(dirname "$0")/../.."
for item in "$@"; do
  mode=${item%%:*}; lever=${item#*:}
  case $lever in
    jit_*) extra="--jit-level-b ${lever#jit_}" ;;
    ctx:*) extra="--context-b ${lever#ctx:}" ;;
    *) extra="--variant $lever" ;;
  esac
  reps=5; [ "$mode" = train ] && reps=3
  .venv/bin/python benchmarks/experiments/bench_ab.py --modes $mode --repeats $reps $extra \
     > /tmp/levers/ab_${lever//[:=\/]/_}_$mode.log 2>&1
  grep -E "ratio .* ->" /tmp/levers/ab_${lever//[:=\/]/_}_$mode.log || tail -3 /tmp/levers/ab_${lever//[:=\/]/_}_$mode.log
done
