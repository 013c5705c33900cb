"""Does the matmul ceiling depend on what the process ran before? bench_model's GEMM probe
(1024 tokens, fastest of 5 calls, best and median of 5 repeats) in a fresh process, then
after building and stepping each row's training side, and again after timing 3 steps.

    .venv/bin/python benchmarks/experiments/ceiling_probe.py [--rows roberta-8x128,bert-8x128,luke-8x128]
"""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "../..")]
os.environ.setdefault("GLOG_v", "3")

import bench_model  # noqa: E402


def probe(call, flops: float, tag: str) -> None:
    for _ in range(2):
        call()
    fastest = [bench_model.fastest_call(call, bench_model.GEMM_CALLS) for _ in range(5)]
    print(f"{tag}: best {flops / min(fastest) / 1e9:.0f}, median "
          f"{flops / statistics.median(fastest) / 1e9:.0f} GFLOP/s", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="roberta-8x128,bert-8x128,luke-8x128")
    rows = p.parse_args().rows.split(",")
    args = bench_model.parse_args(["--rows", rows[0]])
    bench_model.set_thread_env(args.threads)
    bench_model.init_frameworks(args)
    gemm, _, flops = bench_model.gemm_calls(1024)
    probe(gemm, flops, "fresh process")
    for row in rows:
        side = bench_model.build_side(args, row, "train", "ours")
        for _ in range(3):
            side.call()
        probe(gemm, flops, f"after {row}")
        median = statistics.median(bench_model.timed(side.call, 1) for _ in range(3))
        print(f"  {row} train step median {median * 1e3:.0f} ms", flush=True)
        probe(gemm, flops, f"after {row} again")
        del side


if __name__ == "__main__":
    main()
