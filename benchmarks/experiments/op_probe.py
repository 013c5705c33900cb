"""Micro-timings of single MindSpore CPU kernels at BERT-base 8x128 shapes (jit, 2 threads)."""
import os, sys, time
os.environ["OMP_NUM_THREADS"] = "2"; os.environ.setdefault("GLOG_v", "3")
import numpy as np
import mindspore as ms
from mindspore import ops, nn
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU", runtime_num_threads=2)
rng = np.random.default_rng(0)
T = lambda *s: ms.Tensor(rng.standard_normal(s, dtype=np.float32))

def bench(name, fn, *args, n=5):
    f = ms.jit(fn)
    out = f(*args); (out[0] if isinstance(out, tuple) else out).asnumpy()
    t = time.perf_counter()
    for _ in range(n):
        out = f(*args); (out[0] if isinstance(out, tuple) else out).asnumpy()
    print(f"{name:45s} {(time.perf_counter()-t)/n*1e3:8.2f} ms", flush=True)

x = T(1024, 768); dy = T(1024, 3072); w = T(3072, 768)
which = sys.argv[1:] or ["mm", "slice", "gelu", "reduce", "ln"]
if "mm" in which:
    def f1(a, b):

        return ops.MatMul(transpose_b=True)(a, b)

    bench("fwd x@W^T (transpose_b)", f1, x, w)
    def f2(a, b):

        return ops.MatMul()(a, b)

    bench("dX = dY@W", f2, dy, w)
    def f3(a, b):

        return ops.MatMul(transpose_a=True)(a, b)

    bench("dW = dY^T@x (transpose_a)", f3, dy, x)
    def f4(a, b):

        return ops.MatMul()(a.T, b)

    bench("dW = transpose(dY)@x", f4, dy, x)
    def f5(a, b):

        return ops.MatMul(transpose_a=True)(b, a).T

    bench("dW = (x^T@dY)^T  transpose_a", f5, dy, x)
    def f6(a):

        return a.T * 1.0

    bench("transpose(dY) alone", f6, dy)
if "slice" in which:
    qkv5 = T(3, 8, 12, 128, 64)
    def f7(a):

        return (a[0], a[1], a[2])

    bench("qkv5[0],[1],[2] stridedslice", f7, qkv5)
    def f8(a):

        return ops.unstack(a, 0)

    bench("ops.unstack axis0", f8, qkv5)
    def f9(a):

        return ops.split(a, 1, 0)

    bench("ops.split axis0", f9, qkv5)
    qkv = T(8, 128, 2304)
    def f10(a):

        return (a[:, :, :768], a[:, :, 768:1536], a[:, :, 1536:])

    bench("qkv[...,:768] x3 last-dim slice", f10, qkv)
    def f11(a):

        return ops.split(a, 768, -1)

    bench("ops.split last dim", f11, qkv)
    def f12(a):

        return a.reshape(8, 128, 3, 12, 64).transpose(2, 0, 3, 1, 4) * 1.0

    bench("reshape+5D transpose", f12, qkv)
    def f13(a):

        return a.reshape(8, 128, 3, 12, 64).transpose(0, 2, 3, 1, 4) * 1.0

    bench("reshape(B,L,3,H,D) transpose(0,2,3,1,4)", f13, qkv)
if "gelu" in which:
    h = T(8, 128, 3072)
    bench("nn.GELU(approximate=False)", nn.GELU(approximate=False), h)
    bench("nn.GELU(approximate=True)", nn.GELU(approximate=True), h)
    def f14(a):

        return ops.gelu(a, approximate="none")

    bench("ops.gelu none", f14, h)
    def f15(a):

        return ops.gelu(a, approximate="tanh")

    bench("ops.gelu tanh", f15, h)
    def f16(a):

        return ops.erf(a)

    bench("ops.erf", f16, h)
    def f17(a):

        return 0.5 * a * (1.0 + ops.erf(a * 0.7071067811865476))

    bench("0.5x(1+erf(x*c))", f17, h)
    def f18(a):

        return a * ops.sigmoid(1.702 * a)

    bench("x*sigmoid(1.702x)", f18, h)
    def f19(a):

        return a * 0.7

    bench("mul only", f19, h)
if "reduce" in which:
    def f20(a):

        return a.sum(0)

    bench("BiasAddGrad-ish dY.sum(0)", f20, dy)
    def f21(a):

        return ops.ReduceSum(keep_dims=False)(a, 0)

    bench("ReduceSum axis0 keepdims", f21, dy)
    ones = ms.Tensor(np.ones((1, 1024), np.float32))
    def f22(o, a):

        return ops.matmul(o, a)

    bench("ones@dY", f22, ones, dy)
    def f23(a):

        return ops.operations._grad_ops.BiasAddGrad()(a)

    bench("BiasAddGrad op", f23, dy)
if "ln" in which:
    ln = nn.LayerNorm((768,), epsilon=1e-12)
    xx = T(8, 128, 768)
    bench("LayerNorm fwd", ln, xx)
    def lnloss(a):
        return (ln(a) * a).sum()
    g = ms.grad(lnloss)
    bench("LayerNorm fwd+bwd (grad x)", g, xx)
