"""What LUKE's entity table costs a training step beyond its counted FLOPs: our LUKE-base
8 x 128 + 32 entities step (bench_model's luke-8x128 train side) with the released 500K-row
entity table and with a 5K-row one, median of 5 steps after 4 warm-up calls.

    .venv/bin/python benchmarks/experiments/luke_entity_table.py [--rows 500000,5000]
"""
import argparse
import dataclasses
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, ".."), os.path.join(HERE, "../..")]
os.environ.setdefault("GLOG_v", "3")

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402

import bench_model  # noqa: E402
from src.training.distributed import setup_cpu_runtime  # noqa: E402


def step_seconds(rows: int) -> float:
    config = dataclasses.replace(bench_model.our_config("luke_base"), entity_vocab_size=rows)
    data = bench_model.make_batch("luke", config.vocab_size, 8, 128)
    data.update(bench_model.make_entities(np.random.default_rng(0), 8, 128, entity_vocab=rows))
    args = argparse.Namespace(jit_level="O0")
    side = bench_model.ours_train(args, config, "luke", data, "masked")
    for _ in range(4):
        side.call()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        side.call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="500000,5000", help="entity table sizes to time")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    setup_cpu_runtime(args.threads)
    for rows in (int(r) for r in args.rows.split(",")):
        print(f"entity table {rows} rows: median step {step_seconds(rows):.3f} s", flush=True)


if __name__ == "__main__":
    main()
