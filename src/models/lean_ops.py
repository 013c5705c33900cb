"""Bias add, GELU (exact and tanh), layer norm and softmax with hand-written gradients,
written around MindSpore CPU kernels that keep too much memory or run slowly.

Memory: the CPU graph runtime keeps some kernels' scratch alive for the life of the graph,
one copy per op in it: a broadcasting Add/Sub/Mul ~16 bytes per output element, the erf
GELU kernel ~4 outputs' worth (~11 with its gradient), Softmax's stock gradient (a
broadcasting Sub) ~5. At BERT-base 8x128 that was most of an 11 GB training step
(benchmarks/README.md, "Memory"). These cells compute the same values from kernels that
keep nothing: BiasAdd, same-shape arithmetic, Tile.

Speed: the approximate GeLU kernel and its gradient, a 4-D ReduceSum over the last axis
and BroadcastTo each ran several times slower than plain ops computing the same values.
On float32 CPU inputs the GELUs, layer norm and the attention softmax run as fused kernels
(cpu_kernels.py), each direction one pass; elsewhere the plain-ops formulas below
(benchmarks/README.md, "Speed").
"""
import math

import mindspore as ms
from mindspore import Tensor, nn, ops

from src.models import cpu_kernels, portable

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


class FusedActivation(nn.Cell):
    """An elementwise activation whose gradient dout * slope(x) is recomputed from x alone.
    Float32 on CPU: one fused kernel each way (`kernel`, then `kernel`Grad); otherwise the
    subclass's `formula` and `slope`."""

    kernel = ""

    def __init__(self):
        super().__init__()
        self.fused = cpu_kernels.enabled()
        if self.fused:
            self.forward_kernel = cpu_kernels.custom_op(self.kernel)
            self.grad_kernel = cpu_kernels.custom_op(self.kernel + "Grad")

    def construct(self, x):
        if self.fused and x.dtype == ms.float32:
            return self.forward_kernel(x)
        return self.formula(x)

    def bprop(self, x, out, dout):
        if self.fused and x.dtype == ms.float32:
            return (self.grad_kernel(x, dout),)
        return (dout * self.slope(x),)


def erfc_of_nonnegative(z):
    """erfc(z) for z >= 0 from Exp and arithmetic alone (Numerical Recipes' erfcc, relative
    error < 1.2e-7: float32's own rounding), for graphs whose converter has no Erf."""
    t = ops.div(ops.ones_like(z), 1.0 + 0.5 * z)
    poly = _ERFC_COEFFICIENTS[-1]
    for coefficient in reversed(_ERFC_COEFFICIENTS[:-1]):
        poly = coefficient + t * poly
    return t * ops.exp(poly - z * z)


_ERFC_COEFFICIENTS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
                      0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)


class ExactGELU(FusedActivation):
    """x * Phi(x) with the erf form (BERT's gelu); slope Phi(x) + x * phi(x). In an ONNX
    build (portable.py) the same function as relu(x) - |x| * erfc(|x| / sqrt 2) / 2."""

    kernel = "GeluErf"

    def __init__(self):
        super().__init__()
        self.composed_erf = portable.onnx_ops()

    def formula(self, x):
        if self.composed_erf:
            size = ops.abs(x)
            return ops.relu(x) - 0.5 * size * erfc_of_nonnegative(size * _SQRT_HALF)
        return 0.5 * x * (1.0 + ops.erf(x * _SQRT_HALF))

    def slope(self, x):
        cdf = 0.5 * (1.0 + ops.erf(x * _SQRT_HALF))
        pdf = ops.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return cdf + x * pdf


class TanhGELU(FusedActivation):
    """gelu_new (ALBERT's): 0.5 * x * (1 + tanh(u)), u = sqrt(2/pi) * (x + 0.044715 x^3).
    The formula is x * sigmoid(2u), the same function: MindSpore's CPU Tanh kernel is off by
    up to 1e-4, its approximate GeLU kernel and gradient took ~45 ms each at 1024x3072."""

    kernel = "GeluTanh"

    def formula(self, x):
        return x * ops.sigmoid(self.twice_inner(x))

    def slope(self, x):
        s = ops.sigmoid(self.twice_inner(x))
        return s + x * s * (1.0 - s) * 2.0 * _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)

    @staticmethod
    def twice_inner(x):
        return 2.0 * _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)


def _grad_shapes(x, gamma, dout, eps):
    return x, gamma, gamma


class FusedNorm(nn.Cell):
    """Layer norm of x over its last axis through the fused CPU kernels; the gradient
    recomputes the row statistics from x (LayerNormGrad took ~9 ms per 1024x768 call)."""

    def __init__(self, epsilon: float):
        super().__init__()
        self.eps = Tensor([epsilon], ms.float32)
        self.kernel = cpu_kernels.custom_op("LayerNorm")
        self.grad_kernel = cpu_kernels.custom_op("LayerNormGrad", _grad_shapes, _grad_shapes)

    def construct(self, x, gamma, beta):
        return self.kernel(x, gamma, beta, self.eps)

    def bprop(self, x, gamma, beta, out, dout):
        return self.grad_kernel(x, gamma, dout, self.eps)


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm (same parameters and names) running FusedNorm on float32 CPU inputs
    when it normalises over the last axis alone."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fused = (cpu_kernels.enabled() and len(self.normalized_shape) == 1
                      and self.begin_norm_axis == -1)
        if self.fused:
            self.fused_norm = FusedNorm(self.epsilon)

    def construct(self, x):
        if self.fused and x.dtype == ms.float32:
            return self.fused_norm(x, self.gamma, self.beta)
        return super().construct(x)


def row_sums(x):
    """x (..., n) -> (rows, 1), the sums over its last axis as a 2-D reduction (a 4-D
    ReduceSum over the last axis ran ~13x slower on CPU)."""
    return x.reshape(-1, x.shape[-1]).sum(-1, keepdims=True)


def across_row(column, width: int):
    """(rows, 1) -> (rows, width), each row's value repeated: Tile, ~9x faster than
    BroadcastTo on CPU, and unlike a broadcasting Mul/Sub it keeps no scratch."""
    return ops.tile(column, (1, width))


class Softmax(nn.Cell):
    """Attention probabilities softmax(scores * scale + mask) over the last axis, mask the
    scores' shape; gradient scale * p * (g - sum(g * p)). Float32 on CPU: one fused kernel
    each way; otherwise the sum is repeated along the row by across_row rather than by a
    broadcasting Sub."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale
        self.softmax = ops.Softmax(-1)
        self.fused = cpu_kernels.enabled()
        if self.fused:
            self.scale_tensor = Tensor([scale], ms.float32)
            self.kernel = cpu_kernels.custom_op("ScaledSoftmax")
            self.grad_kernel = cpu_kernels.custom_op("ScaledSoftmaxGrad")

    def construct(self, scores, mask):
        if self.fused and scores.dtype == ms.float32:
            return self.kernel(scores, mask, self.scale_tensor)
        return self.softmax(scores * self.scale + mask)

    def bprop(self, scores, mask, out, dout):
        if self.fused and scores.dtype == ms.float32:
            return self.grad_kernel(out, dout, self.scale_tensor), ops.zeros_like(mask)
        total = across_row(row_sums(dout * out), out.shape[-1]).reshape(out.shape)
        return out * (dout - total) * self.scale, ops.zeros_like(mask)
