"""Our side of one benchmark row alone (no peer, no ceiling): median step time after 5
warm-up calls, for quick A/B checks of a kernel change. The step-by-step numbers in
benchmarks/README.md, "Speed", came from this script.

    .venv/bin/python benchmarks/experiments/step_time.py bert-8x128 train \
        [--calls 8] [--variant NAME] [--dropout 0.1] [--threads 2] \
        [--context inter_op_parallel_num=1]
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, ".."), os.path.join(HERE, "../..")]
os.environ.setdefault("GLOG_v", "3")

import mindspore as ms  # noqa: E402

import bench_model  # noqa: E402
from src.training.distributed import setup_cpu_runtime  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("row", nargs="?", default="bert-8x128", choices=list(bench_model.ROWS))
    p.add_argument("mode", nargs="?", default="train", choices=["inference", "train"])
    p.add_argument("--calls", type=int, default=8, help="timed calls (median)")
    p.add_argument("--variant", default="", help="experiments/variants.py NAME[,NAME]")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2,
                   help="MindSpore's CPU threads (its own default is 25)")
    p.add_argument("--context", action="append", default=[],
                   help="extra ms.set_context key=value (repeatable)")
    args = p.parse_args()
    row, mode, calls = args.row, args.mode, args.calls
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    setup_cpu_runtime(args.threads)
    bench_model.apply_context(args.context)
    if args.variant:
        import variants
        variants.apply(args.variant)
    bench_args = bench_model.parse_args(["--rows", row, "--dropout", str(args.dropout)])
    side = bench_model.build_side(bench_args, row, mode, "ours")
    for _ in range(5):
        side.call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        side.call()
        times.append(time.perf_counter() - start)
    _, _, batch, seq, _ = bench_model.ROWS[row]
    median = statistics.median(times)
    peak = bench_model.proc_status_kb("VmHWM") / 1024
    print(f"{row} {mode}: median {median * 1e3:.0f} ms, fastest {min(times) * 1e3:.0f} ms, "
          f"{batch * seq / median:.0f} tok/s, peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
