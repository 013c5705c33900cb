"""CRF: Viterbi equals brute force, the loss equals the brute-force negative log-likelihood,
and its gradient trains in graph mode."""
import itertools

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from src.models.crf import CRF, viterbi


def _path_score(row, path, transitions, start, end):
    score = start[path[0]] + end[path[-1]] + sum(row[t, label] for t, label in enumerate(path))
    return score + sum(transitions[a, b] for a, b in zip(path, path[1:]))


def _all_paths(length, labels):
    return itertools.product(range(labels), repeat=length)


def _crf_and_params(labels, seed):
    crf = CRF(labels)
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=p.shape).astype(np.float32)
              for p in (crf.transitions, crf.start_transitions, crf.end_transitions)]
    for param, array in zip((crf.transitions, crf.start_transitions, crf.end_transitions), arrays):
        param.set_data(Tensor(array))
    return crf, arrays


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels, width = 3, 5
    emissions = rng.normal(size=(4, width, labels))
    lengths = np.array([5, 3, 1, 0])
    transitions, start, end = (rng.normal(size=s) for s in ((labels, labels), labels, labels))
    got = viterbi(emissions, lengths, transitions, start, end)
    for row, length, path in zip(emissions, lengths, got):
        assert len(path) == length
        if length:
            best = max(_all_paths(length, labels),
                       key=lambda p: _path_score(row, p, transitions, start, end))
            assert tuple(path) == best


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_loss_equals_brute_force_negative_log_likelihood(mode):
    ms.set_context(mode=mode)
    try:
        labels, width = 3, 4
        crf, (transitions, start, end) = _crf_and_params(labels, 7)
        rng = np.random.default_rng(3)
        emissions = rng.normal(size=(3, width, labels)).astype(np.float32)
        lengths = [4, 2, 1]
        tags = rng.integers(0, labels, size=(3, width)).astype(np.int32)
        mask = (np.arange(width)[None] < np.array(lengths)[:, None]).astype(np.int32)
        tags[mask == 0] = -1  # ignored positions carry -1, as NER features do
        expected = []
        for row, length, gold in zip(emissions, lengths, tags):
            scores = [_path_score(row, p, transitions, start, end) for p in _all_paths(length, labels)]
            log_z = np.log(np.sum(np.exp(scores)))
            expected.append(log_z - _path_score(row, tuple(gold[:length]), transitions, start, end))
        got = crf(Tensor(emissions), Tensor(tags), Tensor(mask)).asnumpy()
        assert abs(float(got) - np.mean(expected)) < 1e-4
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


def test_empty_rows_do_not_count():
    crf, _ = _crf_and_params(2, 1)
    emissions = np.random.default_rng(0).normal(size=(2, 3, 2)).astype(np.float32)
    tags = np.zeros((2, 3), np.int32)
    full = crf(Tensor(emissions[:1]), Tensor(tags[:1]), Tensor(np.ones((1, 3), np.int32)))
    mixed = crf(Tensor(emissions), Tensor(tags), Tensor(np.array([[1, 1, 1], [0, 0, 0]], np.int32)))
    assert abs(float(full.asnumpy()) - float(mixed.asnumpy())) < 1e-5


def test_gradient_descent_makes_gold_path_the_viterbi_path():
    labels, width = 4, 6
    crf = CRF(labels)
    rng = np.random.default_rng(0)
    emissions = ms.Parameter(Tensor(rng.normal(size=(2, width, labels)).astype(np.float32)), name="e")
    tags = np.array([[0, 1, 1, 2, 3, 3], [2, 2, 0, 1, -1, -1]], np.int32)
    mask = (tags >= 0).astype(np.int32)
    params = [emissions] + list(crf.trainable_params())
    optimizer = ms.nn.Adam(params, learning_rate=0.1)
    tags_t, mask_t = Tensor(tags), Tensor(mask)

    def loss_fn():
        return crf(emissions, tags_t, mask_t)
    grad_fn = ms.value_and_grad(loss_fn, None, params)

    @ms.jit
    def step():
        loss, grads = grad_fn()
        optimizer(grads)
        return loss

    first = float(step().asnumpy())
    for _ in range(60):
        last = float(step().asnumpy())
    assert last < first * 0.1
    decoded = crf.decode(emissions.asnumpy(), mask.sum(1))
    assert decoded == [list(tags[0]), list(tags[1, :4])]
