"""Where does the exported graph's time go? Our MINDIR (or ONNX: FMT=ONNX) of one deploy row
built as bench_model.py builds it, median of 10 calls, then MindSpore's profiler over two
calls (MINDIR only; per-operator table in ./data/*/FRAMEWORK/cpu_op_type_info_0.csv, so run
it from /tmp).

    ROW=bert-8x128 .venv/bin/python benchmarks/experiments/profile_exported.py
"""
import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "../..")]
os.environ.setdefault("GLOG_v", "3")

import mindspore as ms  # noqa: E402
from mindspore.profiler import ProfilerActivity, profile  # noqa: E402

import bench_model  # noqa: E402
from src.training.distributed import setup_cpu_runtime  # noqa: E402


def main() -> None:
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    setup_cpu_runtime(2)
    row, file_format = os.environ.get("ROW", "bert-1x128"), os.environ.get("FMT", "MINDIR")
    yaml_name, family, batch, seq, _ = bench_model.ROWS[row]
    config = bench_model.our_config(yaml_name)
    data = bench_model.make_batch(family, config.vocab_size, batch, seq)
    args = argparse.Namespace(threads=2, jit_level="O0")
    with tempfile.TemporaryDirectory() as folder:
        side = bench_model.ours_exported(args, config, data, folder, file_format)
        for _ in range(3):
            side.call()
        median = statistics.median(bench_model.timed(side.call, 1) for _ in range(10))
        print(f"{row} {file_format}: median {median * 1e3:.1f} ms", flush=True)
        if file_format == "MINDIR":
            with profile(activities=[ProfilerActivity.CPU], on_trace_ready=None):
                for _ in range(2):
                    side.call()


if __name__ == "__main__":
    main()
