"""Counter-based dropout: masks are a pure function of (step key, site, element index).

MindSpore's dropout kernels keep their random state inside the compiled graph, where it
can be neither saved nor restored. Here every mask comes from an integer hash of the
element's index, the dropout site and a key the trainer sets each step, so a run that
is killed and resumed draws exactly the masks an unbroken run draws.

On float32 CPU inputs one fused kernel (cpu_kernels.cc, HashDropout) draws the same masks
bit for bit: the int32 ops of the hash held ~1.5 GB of scratch in a BERT-base step and
took ~0.5 s of it, and the kernel keeps no mask (the gradient redraws it).
"""
import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from src.models import cpu_kernels

# A 32-bit integer mixer (two xor-shift-multiply rounds); int32 products wrap modulo 2^32.
_MIX = 73244475
_SITE_STRIDE = 7919
_KEY_STRIDE = 1000003
_UNIT = 1.0 / (1 << 23)


def _xorshift_mix(h: Tensor) -> Tensor:
    return ops.bitwise_xor(h, ops.bitwise_and(ops.bitwise_right_shift(h, 16), 0xFFFF)) * _MIX


def uniform_from_hash(shape, key: Tensor, site: int) -> Tensor:
    """Uniform [0, 1) floats, one per element, determined by (key, site, index)."""
    size = 1
    for dim in shape:
        size *= dim
    h = ops.arange(size, dtype=ms.int32).reshape(shape)
    h = ops.bitwise_xor(h, key * _KEY_STRIDE + site * _SITE_STRIDE)
    h = _xorshift_mix(_xorshift_mix(h))
    h = ops.bitwise_xor(h, ops.bitwise_and(ops.bitwise_right_shift(h, 16), 0xFFFF))
    return ops.bitwise_and(h, 0x7FFFFF).astype(ms.float32) * _UNIT


class FusedDropout(nn.Cell):
    """dropout(x) for a given key through the HashDropout kernel; the gradient applies the
    same mask to the incoming gradient, so nothing is kept between the two."""

    def __init__(self, p: float, site: int):
        super().__init__()
        self.site = Tensor([site], ms.int32)
        self.p_scale = Tensor(np.array([p, 1.0 / (1.0 - p)], np.float32))
        self.kernel = cpu_kernels.custom_op("HashDropout")

    def construct(self, x, key):
        return self.kernel(x, key, self.site, self.p_scale)

    def bprop(self, x, key, out, dout):
        return self.kernel(dout, key, self.site, self.p_scale), ops.zeros_like(key)


class Dropout(nn.Cell):
    """Inverted dropout whose mask is uniform_from_hash(key, site) >= p; identity in eval."""

    def __init__(self, p: float, key: Parameter, site: int):
        super().__init__()
        self.p = p
        self.key = key
        self.site = site
        self.fused = p > 0 and cpu_kernels.enabled()
        if self.fused:
            self.fused_dropout = FusedDropout(p, site)

    def construct(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if self.fused and x.dtype == ms.float32:
            return self.fused_dropout(x, self.key)
        keep = uniform_from_hash(x.shape, self.key, self.site) >= self.p
        return x * (keep.astype(x.dtype) * (1.0 / (1.0 - self.p)))


class DropoutStream:
    """Hands out dropout sites of one model, all reading one per-step key."""

    def __init__(self):
        self.key = Parameter(Tensor(0, ms.int32), name="dropout_key", requires_grad=False)
        self.sites = 0

    def dropout(self, p: float) -> Dropout:
        self.sites += 1
        return Dropout(p, self.key, self.sites)

    def set_key(self, seed: int, step: int, rank: int = 0) -> None:
        """Key of one training step on one rank (ranks draw different masks)."""
        mixed = (seed * 0x9E3779B1 + step * 0x85EBCA6B + rank * 0xC2B2AE35) & 0x7FFFFFFF
        # assign, not set_data: set_data would detach the parameter from compiled graphs
        ops.assign(self.key, Tensor(mixed, ms.int32))
