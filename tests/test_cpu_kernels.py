"""The fused CPU kernels (src/models/cpu_kernels.cc) against the plain-ops formulas they
replace, values and gradients in graph and PyNative mode (the sum of squares against
float64); and the fallback to plain ops when the kernels are switched off or cannot be
built."""
import logging

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from src.models import cpu_kernels, lean_ops
from src.models.dropout import Dropout, DropoutStream
from src.training.optimizers import AdamW, SumOfSquares, decay_groups

RNG = np.random.default_rng(7)


def gradients(cell, mode, weights, *inputs):
    """(output, gradients of sum(output * weights) w.r.t. every input and parameter)."""
    params = cell.trainable_params()

    def loss(*xs):
        return (cell(*xs) * weights).sum()
    grad = ms.grad(loss, tuple(range(len(inputs))), params or None)
    grad = ms.jit(grad) if mode == "graph" else grad
    out = ms.jit(cell)(*inputs) if mode == "graph" else cell(*inputs)
    grads = grad(*inputs)
    if isinstance(grads, ms.Tensor):  # one input, no parameters
        grads = (grads,)
    flat = list(grads[0]) + list(grads[1]) if params else list(grads)
    return [out.asnumpy()] + [g.asnumpy() for g in flat]


def assert_same(fused, plain, mode, *inputs):
    assert fused.fused and not getattr(plain, "fused", False)
    weights = ms.Tensor(RNG.standard_normal(plain(*inputs).shape).astype(np.float32))
    for ours, theirs in zip(gradients(fused, mode, weights, *inputs),
                            gradients(plain, mode, weights, *inputs)):
        assert ours.shape == theirs.shape
        scale = max(np.abs(theirs).max(), 1.0)
        assert np.abs(ours - theirs).max() <= 1e-5 * scale


def tensor(*shape, scale=1.0, shift=0.0):
    return ms.Tensor((RNG.standard_normal(shape) * scale + shift).astype(np.float32))


def test_kernels_build_on_this_machine():
    assert cpu_kernels.library() is not None


@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("gelu", [lean_ops.ExactGELU, lean_ops.TanhGELU])
def test_gelu_matches_formula(gelu, mode):
    x = np.concatenate([RNG.standard_normal(2 * 7 * 33) * 3,
                        [0.0, -12.0, 12.0, 40.0, -40.0, 1e-7]]).astype(np.float32)
    plain = gelu()
    plain.fused = False
    assert_same(gelu(), plain, mode, ms.Tensor(x.reshape(2, -1)))


@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("eps", [1e-12, 1e-5])
def test_layer_norm_matches_stock_kernel(mode, eps):
    fused = lean_ops.LayerNorm((48,), epsilon=eps)
    plain = nn.LayerNorm((48,), epsilon=eps)
    gamma, beta = tensor(48, shift=1.0), tensor(48)
    for cell in (fused, plain):
        cell.gamma.set_data(gamma)
        cell.beta.set_data(beta)
    assert_same(fused, plain, mode, tensor(3, 5, 48, scale=4.0, shift=3.0))


@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_attention_softmax_matches_formula(mode):
    scores = tensor(2, 3, 6, 40, scale=8.0)
    keep = RNG.random((2, 1, 1, 40)) > 0.3
    keep[..., 0] = True
    mask = ms.Tensor(np.broadcast_to(np.where(keep, 0.0, -1e9), (2, 3, 6, 40))
                     .astype(np.float32))
    plain = lean_ops.Softmax(0.125)
    plain.fused = False
    probs = lean_ops.Softmax(0.125)(scores, mask).asnumpy()
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-6)
    assert (probs[np.broadcast_to(~keep, probs.shape)] == 0).all()
    assert_same(lean_ops.Softmax(0.125), plain, mode, scores, mask)


def test_switched_off_layers_run_plain_ops(monkeypatch):
    monkeypatch.setenv(cpu_kernels.SWITCH, "0")
    assert cpu_kernels.library() is None
    assert not any(cell.fused for cell in (lean_ops.ExactGELU(), lean_ops.TanhGELU(),
                                           lean_ops.Softmax(0.125), lean_ops.LayerNorm((8,))))
    x = tensor(4, 8)
    assert np.allclose(lean_ops.LayerNorm((8,))(x).asnumpy(),
                       nn.LayerNorm((8,))(x).asnumpy(), atol=1e-6)


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """library() rebuilding into an empty cache; the process-wide result is restored after."""
    monkeypatch.setenv(cpu_kernels.CACHE, str(tmp_path))
    cpu_kernels._built.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    cpu_kernels._built.cache_clear()


def test_build_writes_one_library_into_the_cache(fresh_build):
    path = cpu_kernels.library()
    assert path is not None and [p.name for p in fresh_build.iterdir()] == [path.split("/")[-1]]
    cpu_kernels._built.cache_clear()
    assert cpu_kernels.library() == path


def test_failed_build_falls_back_with_a_warning(fresh_build, monkeypatch, caplog):
    monkeypatch.setenv("CXX", "false")
    with caplog.at_level(logging.WARNING, logger=cpu_kernels.__name__):
        assert cpu_kernels.library() is None
    assert "fused CPU kernels off" in caplog.text
    assert list(fresh_build.iterdir()) == []


def test_missing_compiler_falls_back_with_a_warning(fresh_build, monkeypatch, caplog):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(fresh_build))
    with caplog.at_level(logging.WARNING, logger=cpu_kernels.__name__):
        assert cpu_kernels.library() is None
        assert not lean_ops.ExactGELU().fused
    assert "no C++ compiler" in caplog.text


def test_float16_input_takes_the_plain_path():
    x = tensor(4, 16, scale=2.0)
    gelu = lean_ops.ExactGELU()
    half = ms.jit(gelu)(x.astype(ms.float16)).asnumpy()
    assert half.dtype == np.float16
    assert np.isfinite(half).all() and np.abs(half - gelu(x).asnumpy()).max() < 1e-2


@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_kernel_draws_the_hash_masks_bit_for_bit(mode, p):
    stream = DropoutStream()
    stream.dropout(p)  # a second site: masks depend on it
    fused = stream.dropout(p)
    plain = Dropout(p, stream.key, fused.site)
    plain.fused = False
    fused.set_train(True)
    plain.set_train(True)
    x = tensor(3, 37, 29, scale=2.0)
    dout = tensor(3, 37, 29)
    for step in (0, 7, 123456):
        stream.set_key(seed=11, step=step, rank=1)
        outs = [gradients(cell, mode, dout, x) for cell in (fused, plain)]
        assert fused.fused and all(np.array_equal(a, b) for a, b in zip(*outs))
        keep = outs[1][0] != 0
        scale = np.float32(1 / (1 - p))
        assert np.array_equal(outs[0][1], np.where(keep, dout.asnumpy() * scale, 0))


def test_layer_norm_over_several_axes_runs_the_stock_kernel():
    norm = lean_ops.LayerNorm((4, 8), begin_norm_axis=1, begin_params_axis=1)
    x = tensor(3, 4, 8, scale=2.0)
    stock = nn.LayerNorm((4, 8), begin_norm_axis=1, begin_params_axis=1)
    assert not norm.fused
    assert np.allclose(norm(x).asnumpy(), stock(x).asnumpy(), atol=1e-6)


@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("shape", [(), (7,), (5, 3), (2, 3, 4), (4097,), (30522, 768)])
def test_sum_of_squares_kernel_matches_float64(shape, mode):
    x = (RNG.standard_normal(shape) * 0.1).astype(np.float32)
    exact = (x.astype(np.float64) ** 2).sum()
    fused, plain = SumOfSquares(), SumOfSquares()
    plain.fused = False
    got = [float((ms.jit(cell) if mode == "graph" else cell)(ms.Tensor(x)).asnumpy())
           for cell in (fused, plain)]
    assert fused.fused
    # float32 result: the kernel (blocks added in double) within 1e-6 of the exact sum
    assert abs(got[0] - exact) <= 1e-6 * exact and abs(got[1] - exact) <= 1e-5 * exact


def adamw_run(fused: bool, mode: str, bias_correction: bool, steps: int = 3):
    """Weights and moments after `steps` AdamW updates of a decaying matrix and a bias."""
    params = [ms.Parameter(ms.Tensor(np.linspace(-1, 1, 4097 * 3, dtype=np.float32)
                                     .reshape(4097, 3)), name="layer.weight"),
              ms.Parameter(ms.Tensor(np.linspace(0.5, -0.5, 7, dtype=np.float32)),
                           name="layer.bias")]
    optimizer = AdamW(decay_groups(params, 0.1), learning_rate=ms.Tensor(
        np.array([1e-2, 2e-2, 5e-3], np.float32)), eps=1e-6, bias_correction=bias_correction)
    assert optimizer.fused
    optimizer.fused = fused
    rng = np.random.default_rng(3)
    grads = [[ms.Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in params]
             for _ in range(steps)]

    def update(g0, g1, scale):
        return optimizer((g0, g1), scale)
    update = ms.jit(update) if mode == "graph" else update
    for step, (g0, g1) in enumerate(grads):
        update(g0, g1, ms.Tensor(0.25 * (step + 1), ms.float32))
    return [t.asnumpy() for t in (*params, *optimizer.moments1, *optimizer.moments2)]


@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("bias_correction", [True, False])
def test_fused_adamw_matches_the_stock_kernels(mode, bias_correction):
    """One in-place pass (AdamWInPlace) = ApplyGradientDescent's decay + the Adam kernel, with
    the gradient scale, per-step learning rates, the decaying and the non-decaying group."""
    fused = adamw_run(True, mode, bias_correction)
    stock = adamw_run(False, mode, bias_correction)
    start = adamw_run(True, mode, bias_correction, steps=0)
    for ours, theirs, before in zip(fused, stock, start):
        assert not np.allclose(theirs, before)  # every tensor moved
        assert np.abs(ours - theirs).max() <= 1e-6 * max(np.abs(theirs).max(), 1.0)
