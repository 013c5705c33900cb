"""Memory a MindSpore CPU kernel keeps for the life of a compiled graph, per op in it.

Chains N copies of one op (each followed by sin, so no pass can fold the chain), runs the
graph three times and reports the resident-memory growth per op in units of that op's
output size. A kernel that keeps nothing shows ~0.4 (the pool's own slack); one that keeps
scratch shows it on top. `grad` runs the chain's gradient instead (activations saved for
the backward add ~1-2 units there).

    .venv/bin/python benchmarks/experiments/kernel_memory.py                 # every op, ~4 min
    .venv/bin/python benchmarks/experiments/kernel_memory.py bias_broadcast bias_add

Findings (2026-11-24, mindspore 2.10.0 CPU) are in benchmarks/README.md, "Memory".
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "../.."), HERE]

CHAIN = 20
SHAPES = {"rows": (1024, 768), "scores": (96, 128, 128), "heads": (8, 12, 128, 64)}


def build_ops():
    """name -> (input shape, one op); built after MindSpore is imported."""
    import numpy as np
    import mindspore as ms
    from mindspore import Parameter, Tensor, ops
    from src.models.lean_ops import BiasAdd, ExactGELU, Softmax, across_row, row_sums
    from variants import LeanGradNorm
    bias = Parameter(Tensor(np.ones(768, np.float32)), name="bias")
    scale = Parameter(Tensor(0.999, ms.float32), name="scale")
    add_bias, gelu, softmax = BiasAdd(), ExactGELU(), Softmax(1.0)
    stock_norm, lean_norm = ops.LayerNorm(-1, -1, 1e-12), LeanGradNorm(1e-12)
    bmm, bmm_t = ops.BatchMatMul(), ops.BatchMatMul(transpose_b=True)
    table = {}

    def op(shape_name):
        """Registers the function under its name, with its input shape."""
        def register(fn):
            table[fn.__name__] = (shape_name, fn)
            return fn
        return register

    @op("rows")
    def sin_only(a):
        return a

    @op("rows")
    def bias_broadcast(a):
        return a + bias

    @op("rows")
    def bias_add(a):
        return add_bias(a, bias)

    @op("rows")
    def mul_scalar(a):
        return a * scale

    @op("rows")
    def div_scalar(a):
        return a / scale

    @op("rows")
    def div_same_shape(a):
        return a / (a + 2.0)

    @op("rows")
    def reciprocal(a):
        return a * ops.reciprocal(a + 2.0)

    @op("rows")
    def gelu_erf_kernel(a):
        return ops.gelu(a, approximate="none")

    @op("rows")
    def gelu_lean(a):
        return gelu(a)

    @op("scores")
    def softmax_kernel(a):
        return ops.softmax(a, -1)

    @op("scores")
    def softmax_lean(a):
        return softmax(a, ops.zeros_like(a))

    @op("heads")
    def transpose(a):
        return a.transpose(0, 2, 1, 3).reshape(8, 12, 128, 64)

    @op("heads")
    def unstack_stack(a):
        return ops.stack(ops.unstack(a, 1), 2).reshape(8, 12, 128, 64)

    @op("heads")
    def ops_matmul_4d(a):
        return ops.matmul(bmm_t(a, a) * 0.01, a)

    @op("heads")
    def batch_matmul(a):
        return bmm(bmm_t(a, a) * 0.01, a)

    @op("rows")
    def layer_norm_kernel(a):
        return stock_norm(a, bias, bias * 0.5)[0]

    @op("rows")
    def layer_norm_lean(a):
        return lean_norm(a, bias, bias * 0.5)

    @op("rows")
    def row_broadcast_to(a):
        return a * ops.broadcast_to(a.sum(-1, keepdims=True), a.shape)

    @op("rows")
    def row_across_row(a):
        return a * across_row(row_sums(a), a.shape[-1])

    @op("rows")
    def int_mul(a):
        return (a.astype(ms.int32) * 3).astype(ms.float32)

    @op("rows")
    def int_xor(a):
        return ops.bitwise_xor(a.astype(ms.int32), 12345).astype(ms.float32)

    return table


def measure(name: str, grad: bool) -> float:
    import numpy as np
    import mindspore as ms
    from mindspore import Tensor, ops
    from src.training.distributed import setup_cpu_runtime
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    setup_cpu_runtime(2)
    shape_name, op = build_ops()[name]
    shape = SHAPES[shape_name]

    def chain(a):
        for _ in range(CHAIN):
            a = ops.sin(op(a))
        return a.sum()

    fn = ms.jit(ms.grad(chain) if grad else chain)
    x = Tensor(np.random.default_rng(0).random(shape, dtype=np.float32))
    before = rss_mb()
    for _ in range(3):
        fn(x).asnumpy()
    return (rss_mb() - before) / CHAIN / (x.size * 4 / 2**20)


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(f"{measure(sys.argv[2], sys.argv[3] == 'grad'):.1f}")
        return
    names = sys.argv[1:] or list(build_ops())
    print(f"{'op':16s} {'forward':>8s} {'gradient':>9s}   (output sizes kept per op)")
    for name in names:
        cells = []
        for mode in ("forward", "grad"):
            out = subprocess.run([sys.executable, __file__, "--one", name, mode],
                                 capture_output=True, text=True, check=True).stdout
            cells.append(out.strip().splitlines()[-1])
        print(f"{name:16s} {cells[0]:>8s} {cells[1]:>9s}")


if __name__ == "__main__":
    main()
