"""Time of slow MindSpore CPU kernels beside what src/ uses instead, at BERT-base shapes.

Each pair runs in one jit graph per side (forward + gradient for a given output gradient
where the pair is about a gradient), median of 20 calls after 3 warm-up calls, 2 threads.
The table in benchmarks/README.md, "Speed", came from this script.

    .venv/bin/python benchmarks/experiments/kernel_speed.py              # every pair, ~2 min
    .venv/bin/python benchmarks/experiments/kernel_speed.py layer_norm
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "../.."), HERE]
os.environ.setdefault("GLOG_v", "3")


def pairs():
    """name -> (what is timed, stock call, our call, their inputs); built after import."""
    import numpy as np
    import mindspore as ms
    from mindspore import Parameter, Tensor, nn, ops
    from src.models.lean_ops import ExactGELU, LayerNorm, Softmax, TanhGELU, across_row, \
        row_sums
    from src.training.optimizers import SumOfSquares, sum_of_squares
    rng = np.random.default_rng(0)

    def tensor(*shape):
        return Tensor(rng.standard_normal(shape, dtype=np.float32))

    def with_grad(cell):
        """Gradients w.r.t. inputs and parameters for a given output gradient (the last
        input): the backward as the training step runs it, with no reduction of its own."""
        grad = ops.GradOperation(get_all=True, get_by_list=True, sens_param=True)
        params = ms.ParameterTuple(cell.trainable_params())

        def backward(*xs):
            return grad(cell, params)(*xs)
        return backward

    def plain(cell):
        """The cell with its fused CPU kernel switched off (its plain-ops formula)."""
        cell.fused = False
        return cell

    # ms.jit parses functions from source: named functions, not lambdas
    def norm_squared(x):
        return ops.square(ops.norm(x))

    def last_axis_sum(x):
        return x.sum(-1, keepdims=True)

    def broadcast_row(c):
        return ops.broadcast_to(c, (12288, 512))

    def repeat_row(c):
        return across_row(c, 512)

    table = {}
    for name, shape in (("square_sum_3072x768", (3072, 768)),
                        ("square_sum_30522x768", (30522, 768))):
        table[name] = ("sum of squares (global norm): ops.norm vs fused kernel", norm_squared,
                       SumOfSquares(), (tensor(*shape),))
    table["square_sum_rows"] = ("sum of squares of 30522x768: row sums (plain ops) vs fused "
                                "kernel", sum_of_squares, SumOfSquares(),
                                (tensor(30522, 768),))
    table["row_sum_4d"] = ("sum over the last axis of 2x12x512x512", last_axis_sum, row_sums,
                           (tensor(2, 12, 512, 512),))
    table["row_repeat"] = ("(12288, 1) -> (12288, 512)", broadcast_row, repeat_row,
                           (tensor(12288, 1),))
    table["gelu_new"] = ("gelu_new forward + gradient, 1024x3072",
                         with_grad(nn.GELU(approximate=True)), with_grad(TanhGELU()),
                         (tensor(1024, 3072), tensor(1024, 3072)))
    table["layer_norm"] = ("layer norm forward + gradient, 8x128x768 (fused kernel)",
                           with_grad(nn.LayerNorm((768,), epsilon=1e-12)),
                           with_grad(LayerNorm((768,), epsilon=1e-12)),
                           (tensor(8, 128, 768), tensor(8, 128, 768)))
    table["gelu"] = ("exact gelu forward + gradient, 1024x3072: erf formula vs fused kernel",
                     with_grad(plain(ExactGELU())), with_grad(ExactGELU()),
                     (tensor(1024, 3072), tensor(1024, 3072)))
    table["softmax"] = ("softmax(scores * scale + mask) forward + gradient, 2x12x512x512: "
                        "formula vs fused kernel",
                        with_grad(plain(Softmax(0.125))), with_grad(Softmax(0.125)),
                        (tensor(2, 12, 512, 512), tensor(2, 12, 512, 512),
                         tensor(2, 12, 512, 512)))
    table["adamw_update"] = ("AdamW update of a 3072x768 tensor",) + adam_pair(
        Parameter, Tensor, ops, rng)
    return table


def adam_pair(Parameter, Tensor, ops, rng):
    """AdamWeightDecay's fused kernel vs Adam's kernel after an in-place decoupled decay
    (what src/training/optimizers.AdamW runs), on the same gradient."""
    import numpy as np
    import mindspore as ms

    def state(prefix):
        return [Parameter(Tensor(rng.standard_normal((3072, 768), dtype=np.float32) * k),
                          name=f"{prefix}{i}") for i, k in enumerate((1.0, 0.0, 0.0))]
    w1, m1, v1 = state("awd")
    w2, m2, v2 = state("adam")
    fused, adam, shrink = ops.AdamWeightDecay(), ops.Adam(), ops.ApplyGradientDescent()
    power, decay = Tensor(0.5, ms.float32), Tensor(1e-4 * 0.01, ms.float32)

    def stock(g):
        return fused(w1, m1, v1, 1e-4, 0.9, 0.999, 1e-6, 0.01, g)[0]

    def ours(g):
        g = ops.depend(g, shrink(w2, decay, w2))
        return adam(w2, m2, v2, power, power, 1e-4, 0.9, 0.999, 1e-6, g)[0]
    return stock, ours, (Tensor(rng.standard_normal((3072, 768), dtype=np.float32)),)


def median_ms(fn, args) -> float:
    import mindspore as ms
    compiled = ms.jit(fn)
    for _ in range(3):
        ready(compiled(*args))
    times = []
    for _ in range(20):
        start = time.perf_counter()
        ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def ready(out):
    """Waits for an output (a tensor, or a tuple/list of them) to be computed."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    out.asnumpy()


def main() -> None:
    import mindspore as ms
    from src.training.distributed import setup_cpu_runtime
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    setup_cpu_runtime(2)
    table = pairs()
    print(f"{'pair':22s} {'stock ms':>9s} {'ours ms':>8s}  what")
    for name in sys.argv[1:] or list(table):
        what, stock, ours, args = table[name]
        print(f"{name:22s} {median_ms(stock, args):9.2f} {median_ms(ours, args):8.2f}  {what}",
              flush=True)


if __name__ == "__main__":
    main()
