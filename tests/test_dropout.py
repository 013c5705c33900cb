"""Counter-based dropout: right keep rate, scaled, same key same mask, identity in eval."""
import mindspore as ms
import numpy as np

from src.models.dropout import DropoutStream


def masks(stream, drop, x, seed, step):
    stream.set_key(seed, step)
    return drop(x).asnumpy()


def test_keep_rate_scaling_and_determinism():
    stream = DropoutStream()
    drop, other = stream.dropout(0.1), stream.dropout(0.1)
    drop.set_train(True)
    other.set_train(True)
    x = ms.Tensor(np.ones((64, 128, 32), np.float32))
    a = masks(stream, drop, x, seed=1, step=5)
    assert abs((a != 0).mean() - 0.9) < 0.005
    assert np.allclose(a[a != 0], 1 / 0.9)
    assert np.array_equal(a, masks(stream, drop, x, seed=1, step=5))
    b = masks(stream, drop, x, seed=1, step=6)
    agreement = ((a != 0) == (b != 0)).mean()
    assert abs(agreement - (0.9 ** 2 + 0.1 ** 2)) < 0.005  # independent across steps
    c = masks(stream, other, x, seed=1, step=5)
    assert abs(((a != 0) == (c != 0)).mean() - 0.82) < 0.005  # independent across sites
    graph = ms.jit(drop)
    stream.set_key(1, 5)
    assert np.array_equal(graph(x).asnumpy(), a)
    stream.set_key(1, 6)  # a compiled graph sees the new key
    assert np.array_equal(graph(x).asnumpy(), b)


def test_identity_in_eval():
    stream = DropoutStream()
    drop = stream.dropout(0.5)
    x = ms.Tensor(np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32))
    assert np.array_equal(drop(x).asnumpy(), x.asnumpy())
