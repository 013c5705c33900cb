"""Where does our time go? MindSpore profiler (CPU activity) over a few inference or train
steps of one benchmark row (BERT-base 8x128 unless ROW is set); prints the top operators.

    ROW=bert-2x512 .venv/bin/python benchmarks/experiments/profile_ops.py [inference|train] [variant]
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
os.environ.setdefault("GLOG_v", "3")
os.environ["OMP_NUM_THREADS"] = "2"


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "inference"
    import mindspore as ms
    from mindspore.profiler import ProfilerActivity, profile
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU", runtime_num_threads=2)
    if len(sys.argv) > 2:
        import variants
        variants.apply(sys.argv[2])
    import bench_model as bm
    row = os.environ.get("ROW", "bert-8x128")
    side = bm.build_side(bm.parse_args(["--rows", row]), row, mode, "ours")
    for _ in range(2):
        side.call()
    out = f"/tmp/ms_prof_{mode}"
    with profile(activities=[ProfilerActivity.CPU], on_trace_ready=None) as prof:
        for _ in range(2):
            side.call()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30)
          if hasattr(prof, "key_averages") else prof)
    print(glob.glob(out + "/**", recursive=True)[:20])


if __name__ == "__main__":
    main()
