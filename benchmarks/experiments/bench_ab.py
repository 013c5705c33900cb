"""A/B of one lever in one process: peer, current backbone (A) and variant (B), interleaved.

On a shared machine the load changes from minute to minute; timing A, B and the peer in
turns within one process makes the before/after comparison fair. The current backbone is
built and compiled before the variant's patch is applied (compiled graphs are kept).

    .venv/bin/python benchmarks/experiments/bench_ab.py --variant unstack_qkv
    .venv/bin/python benchmarks/experiments/bench_ab.py --jit-level-b O1
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--variant", default="")
    p.add_argument("--jit-level-b", default="")
    p.add_argument("--context-b", action="append", default=[],
                   help="ms.set_context key=value applied before B is compiled")
    p.add_argument("--row", default="bert-8x128")
    p.add_argument("--modes", default="inference", help="one mode per process")
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--out", default="/tmp/levers")
    a = p.parse_args()
    import bench_model as bm
    bm.set_thread_env(2)
    args = bm.parse_args(["--rows", a.row])
    bm.init_frameworks(args)
    name = a.variant or (f"jit_{a.jit_level_b}" if a.jit_level_b else "+".join(a.context_b))
    results = {}
    for mode in a.modes.split(","):
        sides = {"peer": bm.build_side(args, a.row, mode, "peer"),
                 "A": bm.build_side(args, a.row, mode, "ours")}
        for s in sides.values():
            s.call()
            s.call()
        for item in a.context_b:
            import mindspore as ms
            import yaml
            key, _, value = item.partition("=")
            ms.set_context(**{key: yaml.safe_load(value)})
        if a.variant:
            import variants
            variants.apply(a.variant)
        args_b = bm.parse_args(["--rows", a.row, "--jit-level", a.jit_level_b or "O0"])
        sides["B"] = bm.build_side(args_b, a.row, mode, "ours")
        sides["B"].call()
        sides["B"].call()
        times = {k: [] for k in sides}
        order = ["A", "B", "peer"]
        for rep in range(a.repeats):
            for k in (order if rep % 2 == 0 else order[::-1]):
                time.sleep(bm.SETTLE_S)
                times[k].append(bm.timed(sides[k].call, 1))
        med = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        results[mode] = dict(times=times, ratio_before=med["peer"] / med["A"],
                             ratio_after=med["peer"] / med["B"], speedup=med["A"] / med["B"],
                             best_ratio_before=best["peer"] / best["A"],
                             best_ratio_after=best["peer"] / best["B"],
                             best_speedup=best["A"] / best["B"])
        r = results[mode]
        print(f"{name} {mode}: ratio {r['ratio_before']:.2f} -> {r['ratio_after']:.2f} "
              f"(B/A speedup {r['speedup']:.2f}; best-of {r['best_ratio_before']:.2f} -> "
              f"{r['best_ratio_after']:.2f}, {r['best_speedup']:.2f})", flush=True)
        del sides
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"ab_{name}_{a.modes}.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
