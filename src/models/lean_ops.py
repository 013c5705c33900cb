"""Bias add, GELU (exact and tanh) and softmax with hand-written gradients,
written around MindSpore CPU kernels that keep too much memory or run slowly.

Memory: the CPU graph runtime keeps some kernels' scratch alive for the life of the graph,
one copy per op in it: a broadcasting Add/Sub/Mul ~16 bytes per output element, the erf
GELU kernel ~4 outputs' worth (~11 with its gradient), Softmax's stock gradient (a
broadcasting Sub) ~5. At BERT-base 8x128 that was most of an 11 GB training step
(benchmarks/README.md, "Memory"). These cells compute the same values from kernels that
keep nothing: BiasAdd, same-shape arithmetic, Tile.

Speed: the approximate GeLU kernel and its gradient, a 4-D ReduceSum over the last axis
and BroadcastTo each ran several times slower than plain ops computing the same values
(benchmarks/README.md, "Speed").
"""
import math

from mindspore import nn, ops

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class BiasAdd(nn.Cell):
    """(rows, n) + bias(n) through the BiasAdd kernel, its bias gradient a ReduceSum
    (MindSpore's BiasAddGrad is ~5x slower on CPU)."""

    def __init__(self):
        super().__init__()
        self.add = ops.BiasAdd()

    def construct(self, x, bias):
        return self.add(x, bias)

    def bprop(self, x, bias, out, dout):
        return dout, dout.sum(0)


class ExactGELU(nn.Cell):
    """x * Phi(x) with the erf form (BERT's gelu); the gradient is recomputed from x alone:
    Phi(x) + x * phi(x)."""

    def construct(self, x):
        return 0.5 * x * (1.0 + ops.erf(x * _SQRT_HALF))

    def bprop(self, x, out, dout):
        cdf = 0.5 * (1.0 + ops.erf(x * _SQRT_HALF))
        pdf = ops.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return (dout * (cdf + x * pdf),)


class TanhGELU(nn.Cell):
    """gelu_new (ALBERT's): 0.5 * x * (1 + tanh(u)), u = sqrt(2/pi) * (x + 0.044715 x^3),
    computed as x * sigmoid(2u), the same function: MindSpore's CPU Tanh kernel is off by up
    to 1e-4, its approximate GeLU kernel and gradient took ~45 ms each at 1024x3072 (these
    plain ops ~7x less). The gradient is recomputed from x."""

    def construct(self, x):
        return x * ops.sigmoid(self.twice_inner(x))

    def bprop(self, x, out, dout):
        s = ops.sigmoid(self.twice_inner(x))
        slope = 2.0 * _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)
        return (dout * (s + x * s * (1.0 - s) * slope),)

    @staticmethod
    def twice_inner(x):
        return 2.0 * _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)


def row_sums(x):
    """x (..., n) -> (rows, 1), the sums over its last axis as a 2-D reduction (a 4-D
    ReduceSum over the last axis ran ~13x slower on CPU)."""
    return x.reshape(-1, x.shape[-1]).sum(-1, keepdims=True)


def across_row(column, width: int):
    """(rows, 1) -> (rows, width), each row's value repeated: Tile, ~9x faster than
    BroadcastTo on CPU, and unlike a broadcasting Mul/Sub it keeps no scratch."""
    return ops.tile(column, (1, width))


class Softmax(nn.Cell):
    """Softmax over the last axis; gradient p * (g - sum(g * p)) with the sum repeated along
    the row by across_row rather than by a broadcasting Sub."""

    def __init__(self):
        super().__init__()
        self.softmax = ops.Softmax(-1)

    def construct(self, x):
        return self.softmax(x)

    def bprop(self, x, out, dout):
        total = across_row(row_sums(dout * out), out.shape[-1]).reshape(out.shape)
        return (out * (dout - total),)
