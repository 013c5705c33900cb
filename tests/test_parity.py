"""Parity with HF transformers (torch CPU): same random weights, outputs within 1e-4."""
import mindspore as ms
import numpy as np
import pytest
import torch

from hf_models import assert_gradients_match, make_hf_model, sample_inputs, torch_inputs
from src.models import load_pretrained
from src.models.conversion import convert

TOL = 1e-4
CASES = {
    "bert": ("bert", {}),
    "albert": ("albert", {}),
    "albert_groups": ("albert", dict(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2)),
    "roberta": ("roberta", {}),
    "ernie_task_id": ("ernie", dict(use_task_id=True)),
}
_converted = {}


def converted(case, head, tmp_path_factory):
    """(HF model, project model dir), built once per case and head."""
    if (case, head) not in _converted:
        family, overrides = CASES[case]
        folder = tmp_path_factory.mktemp(f"{case}-{head}")
        hf = make_hf_model(family, head, str(folder / "hf"), **overrides)
        convert(str(folder / "hf"), str(folder / "ours"))
        _converted[case, head] = hf, str(folder / "ours")
    return _converted[case, head]


def run(model, mode, *inputs):
    call = ms.jit(model) if mode == "graph" else model
    out = call(*[ms.Tensor(x) for x in inputs])
    return [o.asnumpy() for o in (out if isinstance(out, tuple) else (out,))]


def assert_close(ours, theirs):
    assert ours.shape == tuple(theirs.shape)
    assert np.abs(ours - theirs.detach().numpy()).max() <= TOL


@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("case", list(CASES))
def test_pretraining_outputs_match(case, mode, tmp_path_factory):
    family = CASES[case][0]
    hf, ours_dir = converted(case, "pretraining", tmp_path_factory)
    ids, mask, types = sample_inputs(family)
    with torch.no_grad():
        theirs = hf(**torch_inputs(ids, mask, types), output_hidden_states=True)
    logits = run(load_pretrained(ours_dir, head="pretraining"), mode, ids, mask, types)
    if family == "roberta":
        assert_close(logits[0], theirs.logits)
    else:
        assert_close(logits[0], theirs.prediction_logits)
        assert_close(logits[1], theirs.sop_logits if family == "albert"
                     else theirs.seq_relationship_logits)
    sequence, pooled = run(load_pretrained(ours_dir), mode, ids, mask, types)
    assert_close(sequence, theirs.hidden_states[-1])
    if family != "roberta":  # RobertaForMaskedLM has no pooler; RobertaModel is tested below
        base = getattr(hf, family)
        with torch.no_grad():
            assert_close(pooled, base(**torch_inputs(ids, mask, types)).pooler_output)


@pytest.mark.parametrize("case", ["bert", "roberta"])
def test_masked_positions_head_matches_all_positions(case, tmp_path_factory):
    """The head the trainer runs projects only the masked positions (gathered first): its
    logits equal transformers' all-position logits at those positions."""
    family = CASES[case][0]
    hf, ours_dir = converted(case, "pretraining", tmp_path_factory)
    ids, mask, types = sample_inputs(family)
    rng = np.random.default_rng(3)
    positions = np.sort(np.stack([rng.choice(int(m.sum()), 3, replace=False) for m in mask]),
                        1).astype(np.int32)
    with torch.no_grad():
        theirs = hf(**torch_inputs(ids, mask, types))
    full = (theirs.logits if family == "roberta" else theirs.prediction_logits).numpy()
    logits = run(load_pretrained(ours_dir, head="pretraining"), "graph", ids, mask, types,
                 positions)[0]
    expected = np.take_along_axis(full, positions[..., None].astype(np.int64), 1)
    assert logits.shape == expected.shape
    assert np.abs(logits - expected).max() <= TOL


@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_roberta_pooled_output_matches(mode, tmp_path_factory):
    hf, ours_dir = converted("roberta", None, tmp_path_factory)
    ids, mask, types = sample_inputs("roberta")
    with torch.no_grad():
        theirs = hf(**torch_inputs(ids, mask, types))
    sequence, pooled = run(load_pretrained(ours_dir), mode, ids, mask, types)
    assert_close(sequence, theirs.last_hidden_state)
    assert_close(pooled, theirs.pooler_output)


TASK_HEADS = ["question_answering", "token_classification", "sequence_classification",
              "multiple_choice"]


@pytest.mark.parametrize("head", TASK_HEADS)
@pytest.mark.parametrize("case", ["bert", "albert", "roberta", "ernie_task_id"])
def test_task_heads_match(case, head, tmp_path_factory):
    family = CASES[case][0]
    hf, ours_dir = converted(case, head, tmp_path_factory)
    ids, mask, types = sample_inputs(family, batch=4)
    if head == "multiple_choice":
        ids, mask, types = (x.reshape(2, 2, -1) for x in (ids, mask, types))
    with torch.no_grad():
        theirs = hf(**torch_inputs(ids, mask, types))
    ours = run(load_pretrained(ours_dir, head=head), "pynative", ids, mask, types)
    if head == "question_answering":
        assert_close(ours[0], theirs.start_logits)
        assert_close(ours[1], theirs.end_logits)
    else:
        assert_close(ours[0], theirs.logits)


@pytest.mark.parametrize("case", ["bert", "albert", "roberta"])
def test_pretraining_gradients_match(case, tmp_path_factory):
    """Every parameter's gradient equals transformers' (our bias add, GELU and softmax have
    hand-written gradients, src/models/lean_ops.py): a random linear function of the
    pretraining logits, padded batch, graph mode; within 1e-4 of each tensor's largest
    gradient."""
    family = CASES[case][0]
    hf, ours_dir = converted(case, "pretraining", tmp_path_factory)
    ids, mask, types = sample_inputs(family)
    hf.zero_grad()
    theirs = hf(**torch_inputs(ids, mask, types))
    logits = [theirs.logits] if family == "roberta" else [
        theirs.prediction_logits,
        theirs.sop_logits if family == "albert" else theirs.seq_relationship_logits]
    rng = np.random.default_rng(2)
    weights = [rng.standard_normal(tuple(t.shape)).astype(np.float32) for t in logits]
    # padded positions carry no loss, as in every real objective (HF's padding_idx rows never
    # receive a gradient, ours would from a loss that read padded positions)
    weights[0] *= mask[..., None]
    sum((t * torch.from_numpy(w)).sum() for t, w in zip(logits, weights)).backward()
    hf_grads = {n: p.grad.numpy() for n, p in hf.named_parameters() if p.grad is not None}

    model = load_pretrained(ours_dir, head="pretraining")

    def loss_fn(*inputs):
        out = model(*inputs)
        out = out if isinstance(out, tuple) else (out,)
        return sum((o * ms.Tensor(w)).sum() for o, w in zip(out, weights))
    # RobertaForMaskedLM has no pooler to compare ours with
    unchecked = {"backbone.pooler.dense.weight", "backbone.pooler.dense.bias"} \
        if family == "roberta" else set()
    assert_gradients_match(model, loss_fn, (ids, mask, types), hf_grads, unchecked)
