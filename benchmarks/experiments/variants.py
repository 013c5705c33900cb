"""Experimental variants of the backbone, applied by monkeypatching (src/ is never edited).

Each variant replaces a `construct` (or a factory) of src.models.backbone with a copy that
has one change. MindSpore's graph compiler parses the replacement's source, so these are
real graph-mode variants. Parameter names and shapes never change, so the same weights load
into every variant (parity.py checks outputs against the current backbone). The variants
are of the word-only path: they take LUKE's num_words and leave it unused.

    bench_model.py --variant NAME      # speed
    experiments/parity.py NAME         # outputs vs the current backbone, same weights
"""
import math  # noqa: F401  (used by patched source)

import mindspore as ms
from mindspore import nn, ops

from src.models import backbone as B
from src.models.lean_ops import across_row, row_sums
from src.models.relative import FunctionalRelativePositions  # noqa: F401


# --- attention layouts ------------------------------------------------------------------

def attention_split_heads(self, x, mask, relative, num_words=None):
    """q, k, v sliced from the fused projection, each a 4-D transpose; k laid out (B,H,D,L)
    so scores are a plain batched matmul (no 5-D transpose, no transpose_b)."""
    batch, length, width = x.shape
    qkv = self.qkv(x)
    q = qkv[:, :, :width].reshape(batch, length, self.num_heads, self.head_dim)
    k = qkv[:, :, width:2 * width].reshape(batch, length, self.num_heads, self.head_dim)
    v = qkv[:, :, 2 * width:].reshape(batch, length, self.num_heads, self.head_dim)
    q = q.transpose(0, 2, 1, 3)
    k = k.transpose(0, 2, 3, 1)
    v = v.transpose(0, 2, 1, 3)
    scores = ops.matmul(q, k)
    if relative is not None:
        scores = scores + FunctionalRelativePositions.key_scores(q, relative)
    probs = self.softmax(scores.astype(ms.float32), mask)
    probs = self.dropout(probs).astype(v.dtype)
    context = ops.matmul(probs, v)
    if relative is not None:
        context = context + FunctionalRelativePositions.value_context(probs, relative)
    context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)
    return self.output(context)


def attention_scale_q(self, x, mask, relative, num_words=None):
    """Current layout, but q is scaled before the scores matmul (L*D per head instead of
    L*L multiplies) and the float32 cast is skipped when compute is already float32."""
    batch, length, width = x.shape
    qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
    qkv = qkv.transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
    scores = self.scores_of(q, k)
    if relative is not None:
        scores = scores + FunctionalRelativePositions.key_scores(q, relative) * self.scale
    probs = self.softmax.softmax(scores + mask)  # scores already scaled
    probs = self.dropout(probs)
    context = ops.matmul(probs, v)
    if relative is not None:
        context = context + FunctionalRelativePositions.value_context(probs, relative)
    context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)
    return self.output(context)


def attention_ops_softmax(self, x, mask, relative, num_words=None):
    """Current layout with the functional ops.softmax instead of the nn.Softmax cell."""
    batch, length, width = x.shape
    qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
    qkv = qkv.transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = self.scores_of(q, k)
    if relative is not None:
        scores = scores + FunctionalRelativePositions.key_scores(q, relative)
    probs = ops.softmax(scores.astype(ms.float32) * self.scale + mask, -1)
    probs = self.dropout(probs).astype(v.dtype)
    context = ops.matmul(probs, v)
    if relative is not None:
        context = context + FunctionalRelativePositions.value_context(probs, relative)
    context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)
    return self.output(context)


def attention_split_scale(self, x, mask, relative, num_words=None):
    """split_heads + scale_q together."""
    batch, length, width = x.shape
    qkv = self.qkv(x)
    q = qkv[:, :, :width].reshape(batch, length, self.num_heads, self.head_dim)
    k = qkv[:, :, width:2 * width].reshape(batch, length, self.num_heads, self.head_dim)
    v = qkv[:, :, 2 * width:].reshape(batch, length, self.num_heads, self.head_dim)
    q = q.transpose(0, 2, 1, 3) * self.scale
    k = k.transpose(0, 2, 3, 1)
    v = v.transpose(0, 2, 1, 3)
    scores = ops.matmul(q, k)
    if relative is not None:
        scores = scores + FunctionalRelativePositions.key_scores(q, relative) * self.scale
    probs = self.softmax.softmax(scores + mask)  # scores already scaled
    probs = self.dropout(probs)
    context = ops.matmul(probs, v)
    if relative is not None:
        context = context + FunctionalRelativePositions.value_context(probs, relative)
    context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)
    return self.output(context)


def attention_unstack(self, x, mask, relative, num_words=None):
    """Current layout, but q, k, v taken with one Unstack instead of three StridedSlices
    (MindSpore's CPU StridedSlice kernel is slow on the 5-D tensor)."""
    batch, length, width = x.shape
    qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
    q, k, v = ops.unstack(qkv.transpose(2, 0, 3, 1, 4), 0)
    scores = self.scores_of(q, k)
    if relative is not None:
        scores = scores + FunctionalRelativePositions.key_scores(q, relative)
    probs = self.softmax(scores.astype(ms.float32), mask)
    probs = self.dropout(probs).astype(v.dtype)
    context = ops.matmul(probs, v)
    if relative is not None:
        context = context + FunctionalRelativePositions.value_context(probs, relative)
    context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)
    return self.output(context)


def attention_split0(self, x, mask, relative, num_words=None):
    """As unstack, with ops.split along the stacked axis (then squeeze)."""
    batch, length, width = x.shape
    qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
    q, k, v = ops.split(qkv.transpose(2, 0, 3, 1, 4), 1, 0)
    q, k, v = q.squeeze(0), k.squeeze(0), v.squeeze(0)
    scores = self.scores_of(q, k)
    if relative is not None:
        scores = scores + FunctionalRelativePositions.key_scores(q, relative)
    probs = self.softmax(scores.astype(ms.float32), mask)
    probs = self.dropout(probs).astype(v.dtype)
    context = ops.matmul(probs, v)
    if relative is not None:
        context = context + FunctionalRelativePositions.value_context(probs, relative)
    context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)
    return self.output(context)


# --- dense / layer norm -----------------------------------------------------------------

class AddBiasDense(nn.Dense):
    """nn.Dense whose bias is a broadcast Add: its gradient is a ReduceSum, not MindSpore's
    (slow on CPU) BiasAddGrad kernel. Same parameters (weight (out, in), bias)."""

    def construct(self, x):
        shape = x.shape
        y = self.matmul(x.reshape(-1, shape[-1]), self.weight) + self.bias
        return y.reshape(shape[:-1] + (y.shape[-1],))


def add_bias_dense(config, in_dim, out_dim):
    from mindspore.common.initializer import TruncatedNormal
    return AddBiasDense(in_dim, out_dim, weight_init=TruncatedNormal(config.initializer_range))


class ComposedLayerNorm(nn.LayerNorm):
    """Layer norm from mean/var/rsqrt ops, so autodiff builds its backward from elementwise
    ops and reductions instead of the LayerNormGrad kernel. Same parameters (gamma, beta)."""

    def construct(self, x):
        mean = x.mean(-1, keep_dims=True)
        centred = x - mean
        var = (centred * centred).mean(-1, keep_dims=True)
        return centred * ops.rsqrt(var + self.epsilon) * self.gamma + self.beta


def composed_layer_norm(config, dim):
    return ComposedLayerNorm((dim,), epsilon=config.layer_norm_eps)


class LeanGradNorm(nn.Cell):
    """Layer norm over the last axis of x with gamma, beta as inputs. Forward is MindSpore's
    LayerNorm kernel; the gradient is written out with 2-D row sums and Tile (lean_ops),
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dout * gamma: 1.6x faster
    than LayerNormGrad per op on CPU, but the BERT-base step held ~100 MB more
    (benchmarks/README.md, "Speed"). src/ now runs the fused kernel (lean_ops.LayerNorm)."""

    def __init__(self, epsilon: float):
        super().__init__()
        self.epsilon = epsilon
        self.norm = ops.LayerNorm(-1, -1, epsilon)

    def construct(self, x, gamma, beta):
        return self.norm(x, gamma, beta)[0]

    def bprop(self, x, gamma, beta, out, dout):
        width = x.shape[-1]
        # nothing before the incoming gradient: ops reading only forward values or a
        # parameter may run right after the forward, every layer's result then held
        x, gamma = ops.depend(x, dout), ops.depend(gamma, dout)
        xhat, rstd = self.normalized(x.reshape(-1, width))
        rows = dout.reshape(-1, width)
        g = rows * ops.tile(gamma.reshape(1, -1), (rows.shape[0], 1))
        mean_g = row_sums(g) * (1.0 / width)
        mean_gx = row_sums(g * xhat) * (1.0 / width)
        dx = across_row(rstd, width) * g - across_row(rstd * mean_g, width) \
            - across_row(rstd * mean_gx, width) * xhat
        return dx.reshape(x.shape), (rows * xhat).sum(0), rows.sum(0)

    def normalized(self, rows):
        """(rows - mean) * rstd and rstd (rows, 1): the forward's statistics, recomputed."""
        width = rows.shape[-1]
        centred = rows - across_row(row_sums(rows) * (1.0 / width), width)
        variance = row_sums(centred * centred) * (1.0 / width)
        rstd = ops.reciprocal(ops.sqrt(variance + self.epsilon))
        return centred * across_row(rstd, width), rstd


class LeanGradLayerNorm(nn.LayerNorm):
    """nn.LayerNorm (same parameters and names) with LeanGradNorm's gradient."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = LeanGradNorm(self.epsilon)

    def construct(self, x):
        return self.norm(x, self.gamma, self.beta)


def lean_grad_layer_norm(config, dim):
    return LeanGradLayerNorm((dim,), epsilon=config.layer_norm_eps)


# --- layer-level ------------------------------------------------------------------------

def layer_flat_tokens(self, x, mask, relative, num_words=None):
    """The feed-forward runs on (B*L, H) 2-D tokens (no reshape inside each Dense)."""
    batch, length, width = x.shape
    x = self.attention_norm(x + self.dropout(self.attention(x, mask, relative)))
    flat = x.reshape(batch * length, width)
    h = self.output(self.act(self.intermediate(flat)))
    return self.output_norm(flat + self.ffn_dropout(h)).reshape(batch, length, width)


def gelu_tanh_activation(name):
    """Every gelu becomes the tanh approximation (changes numerics: not parity-preserving)."""
    return {"gelu": nn.GELU(approximate=True), "gelu_new": nn.GELU(approximate=True),
            "relu": nn.ReLU(), "tanh": nn.Tanh()}[name]


def gelu_ops_activation(name):
    """Exact gelu through the functional ops.gelu in a tiny cell."""
    return {"gelu": OpsGelu(), "gelu_new": nn.GELU(approximate=True),
            "relu": nn.ReLU(), "tanh": nn.Tanh()}[name]


class OpsGelu(nn.Cell):
    def construct(self, x):
        return ops.gelu(x, approximate="none")


def gelu_erf_activation(name):
    """Exact gelu written as 0.5 x (1 + erf(x / sqrt 2)) from elementwise ops."""
    return {"gelu": ErfGelu(), "gelu_new": nn.GELU(approximate=True),
            "relu": nn.ReLU(), "tanh": nn.Tanh()}[name]


class ErfGelu(nn.Cell):
    def construct(self, x):
        return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))


def plain_kernel(cls):
    """Instances of cls built from now on run their plain-ops formula, not the fused kernel."""
    build = cls.__init__

    def init(self, *args, **kwargs):
        build(self, *args, **kwargs)
        self.fused = False
    cls.__init__ = init


def plain_dropout():
    """Dropout through the int32 hash ops instead of the fused HashDropout kernel."""
    from src.models import dropout
    plain_kernel(dropout.Dropout)


def plain_norm():
    """The gradient norm's sums of squares through row sums instead of the fused kernel."""
    from src.training import optimizers
    plain_kernel(optimizers.SumOfSquares)


def stock_adamw():
    """AdamW through ApplyGradientDescent + the stock Adam kernel instead of AdamWInPlace."""
    from src.training import optimizers
    plain_kernel(optimizers.AdamW)


VARIANTS = {
    "split_heads": ("SelfAttention", attention_split_heads),
    "scale_q": ("SelfAttention", attention_scale_q),
    "ops_softmax": ("SelfAttention", attention_ops_softmax),
    "split_scale": ("SelfAttention", attention_split_scale),
    "flat_tokens": ("TransformerLayer", layer_flat_tokens),
    "unstack_qkv": ("SelfAttention", attention_unstack),
    "split_qkv": ("SelfAttention", attention_split0),
    "add_bias": ("dense", add_bias_dense),
    "ln_composed": ("layer_norm", composed_layer_norm),
    "ln_lean_grad": ("layer_norm", lean_grad_layer_norm),
    "gelu_tanh": ("activation", gelu_tanh_activation),
    "gelu_ops": ("activation", gelu_ops_activation),
    "gelu_erf": ("activation", gelu_erf_activation),
    "plain_dropout": ("patch", plain_dropout),
    "plain_norm": ("patch", plain_norm),
    "stock_adamw": ("patch", stock_adamw),
}


def apply(names: str) -> None:
    """Apply one or more variants (comma-separated) to src.models.backbone."""
    import src.models.heads as H
    for name in names.split(","):
        target, fn = VARIANTS[name]
        if target == "patch":
            fn()
        elif target in ("activation", "dense", "layer_norm"):
            setattr(B, target, fn)
            setattr(H, target, fn)
        else:
            setattr(getattr(B, target), "construct", fn)
