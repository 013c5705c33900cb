"""Resident memory of our BERT-base training step (the benchmark's `ours_train`), with MindSpore
memory knobs to try one at a time; prints RSS after each step.

    .venv/bin/python benchmarks/experiments/memory_probe.py                       # as shipped
    .venv/bin/python benchmarks/experiments/memory_probe.py memory_optimize_level=O1
    .venv/bin/python benchmarks/experiments/memory_probe.py runtime_optimize_level=O1
    .venv/bin/python benchmarks/experiments/memory_probe.py recompute=1           # Cell.recompute per layer

Measured 2026-11-24 (2 cores): 11.4 GB before the lean kernels (13.2 / 13.2 / 13.3 GB with
the three knobs); 3.55 GB after them (benchmarks/README.md, "Memory"), 5.45 GB with either
optimize_level=O1 knob.
"""
import os
import resource
import sys
import time

sys.path[:0] = [os.path.join(os.path.dirname(__file__), ".."), os.path.join(os.path.dirname(__file__), "../..")]

import mindspore as ms  # noqa: E402

import bench_model  # noqa: E402
import src.models.backbone as backbone  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def apply(knob: str) -> None:
    key, _, value = knob.partition("=")
    if key == "runtime_optimize_level":
        ms.runtime.set_memory(optimize_level=value)
    elif key == "recompute":
        layer_init = backbone.TransformerLayer.__init__

        def init(self, *args, **kwargs):
            layer_init(self, *args, **kwargs)
            self.recompute()
        backbone.TransformerLayer.__init__ = init
    else:
        ms.set_context(**{key: value})


def main() -> None:
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    ms.device_context.cpu.op_tuning.threads_num(os.cpu_count())
    for knob in sys.argv[1:]:
        apply(knob)
    config = bench_model.our_config("bert_base")
    data = bench_model.make_batch("bert", config.vocab_size, 8, 128)
    side = bench_model.ours_train(bench_model.parse_args([]), config, "bert", data, "masked")
    print(f"built: {rss_mb():.0f} MB")
    for step in range(3):
        started = time.time()
        side.call()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"step {step}: {time.time() - started:.1f} s, rss {rss_mb():.0f} MB, peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
