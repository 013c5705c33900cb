"""Our side of one benchmark row alone (no peer, no ceiling): median step time after 5
warm-up calls, for quick A/B checks of a kernel change. The step-by-step numbers in
benchmarks/README.md, "Speed", came from this script.

    .venv/bin/python benchmarks/experiments/step_time.py bert-8x128 train [calls] [variant]
"""
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
    row = sys.argv[1] if len(sys.argv) > 1 else "bert-8x128"
    mode = sys.argv[2] if len(sys.argv) > 2 else "train"
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    setup_cpu_runtime(2)
    if len(sys.argv) > 4:
        import variants
        variants.apply(sys.argv[4])
    side = bench_model.build_side(bench_model.parse_args(["--rows", row]), row, mode, "ours")
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
