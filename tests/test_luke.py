"""LUKE: parity with transformers' LukeModel and every LukeFor* head (tiny random models,
every weight randomised), conversion both ways and from the zoo's and the original release's
names, and a jit training step per head."""
import json
import os

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import nn
from safetensors.numpy import load_file

from hf_models import (TINY, LUKE, assert_gradients_match, hf_class, make_hf_model, sample_entities, sample_inputs,
                       torch_entities, torch_inputs)
from jit_steps import step_losses
from src.errors import UserError
from src.models import build_model, load_pretrained
from src.models.config import ModelConfig
from src.models.conversion import convert
from src.models.entity_heads import mention_ends
from src.training.losses import cross_entropy, multi_label_loss, token_loss, \
    weighted_cross_entropy

TOL = 1e-4
CASES = {"aware_narrow": dict(use_entity_aware_attention=True, entity_emb_size=16),
         "aware_wide": dict(use_entity_aware_attention=True, entity_emb_size=32),
         "plain_narrow": dict(use_entity_aware_attention=False, entity_emb_size=16)}
HEADS = ["masked_lm", "entity_classification", "entity_pair_classification",
         "entity_span_classification", "sequence_classification", "token_classification",
         "question_answering", "multiple_choice"]
_built = {}


def converted(case, head, tmp_path_factory):
    """(HF model, HF dir, project dir), built once per case and head."""
    if (case, head) not in _built:
        folder = tmp_path_factory.mktemp(f"luke-{case}-{head}")
        hf = make_hf_model("luke", head, str(folder / "hf"), **CASES[case])
        convert(str(folder / "hf"), str(folder / "ours"))
        _built[case, head] = hf, str(folder / "hf"), str(folder / "ours")
    return _built[case, head]


def inputs(batch=3):
    """Padded words, padded entities, mentions of 1-3 tokens (numpy, int32)."""
    words = sample_inputs("luke", batch=batch)
    return words + sample_entities(words[1])


def run(model, mode, arrays):
    call = ms.jit(model) if mode == "graph" else model
    out = call(*[ms.Tensor(x) for x in arrays])
    return [o.asnumpy() for o in (out if isinstance(out, tuple) else (out,))]


def torch_call(hf, arrays, **extra):
    with torch.no_grad():
        return hf(**torch_inputs(*arrays[:3]), **torch_entities(*arrays[3:]), **extra)


def assert_close(ours, theirs):
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= TOL


@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("case", list(CASES))
def test_backbone_matches_luke_model(case, mode, tmp_path_factory):
    hf, _, ours_dir = converted(case, None, tmp_path_factory)
    arrays = inputs()
    theirs = torch_call(hf, arrays)
    words, pooled, entities = run(load_pretrained(ours_dir), mode, arrays)
    assert_close(words, theirs.last_hidden_state)
    assert_close(pooled, theirs.pooler_output)
    assert_close(entities, theirs.entity_last_hidden_state)


def test_without_entities_luke_is_roberta(tmp_path_factory):
    hf, _, ours_dir = converted("aware_narrow", None, tmp_path_factory)
    arrays = inputs()[:3]
    with torch.no_grad():
        theirs = hf(**torch_inputs(*arrays))
    words, pooled = run(load_pretrained(ours_dir), "graph", arrays)
    assert_close(words, theirs.last_hidden_state)
    assert_close(pooled, theirs.pooler_output)


def span_ends(positions):
    """transformers' entity_start_positions / entity_end_positions of our mentions."""
    start, end = mention_ends(ms.Tensor(positions))
    return dict(entity_start_positions=torch.tensor(start.asnumpy(), dtype=torch.long),
                entity_end_positions=torch.tensor(end.asnumpy(), dtype=torch.long))


def test_mention_ends_are_first_and_last_token():
    positions = np.array([[[4, 5, 6], [2, -1, -1], [-1, -1, -1]]], np.int32)
    start, end = mention_ends(ms.Tensor(positions))
    assert start.asnumpy().tolist() == [[4, 2, 0]]
    assert end.asnumpy().tolist() == [[6, 2, 0]]


@pytest.mark.parametrize("head", HEADS)
def test_heads_match_transformers(head, tmp_path_factory):
    hf, _, ours_dir = converted("aware_narrow", head, tmp_path_factory)
    arrays = inputs(batch=4)
    extra = span_ends(arrays[6]) if head == "entity_span_classification" else {}
    if head == "multiple_choice":
        arrays = tuple(x.reshape((2, 2) + x.shape[1:]) for x in arrays)
    theirs = torch_call(hf, arrays, **extra)
    ours = run(load_pretrained(ours_dir, head=head), "pynative", arrays)
    if head == "masked_lm":
        assert_close(ours[0], theirs.logits)
        assert_close(ours[1], theirs.entity_logits)
    elif head == "question_answering":
        assert_close(ours[0], theirs.start_logits)
        assert_close(ours[1], theirs.end_logits)
    else:
        assert_close(ours[0], theirs.logits)


def test_gradients_match_transformers(tmp_path_factory):
    """Every parameter's gradient of a random linear function of the word and entity
    logits (padded words and entities, graph mode) equals transformers'."""
    hf, _, ours_dir = converted("aware_narrow", "masked_lm", tmp_path_factory)
    arrays = inputs()
    hf.zero_grad()
    theirs = hf(**torch_inputs(*arrays[:3]), **torch_entities(*arrays[3:]))
    rng = np.random.default_rng(2)
    # padded words and entities carry no loss, as in every real objective
    weights = [rng.standard_normal(tuple(t.shape)).astype(np.float32) * m[..., None]
               for t, m in ((theirs.logits, arrays[1]), (theirs.entity_logits, arrays[4]))]
    ((theirs.logits * torch.from_numpy(weights[0])).sum()
     + (theirs.entity_logits * torch.from_numpy(weights[1])).sum()).backward()
    hf_grads = {n: p.grad.numpy() for n, p in hf.named_parameters() if p.grad is not None}
    # transformers 5's word decoder is a parameter of its own; ours is the tied word table,
    # whose gradient is the sum of both uses
    hf_grads["luke.embeddings.word_embeddings.weight"] += hf_grads.pop("lm_head.decoder.weight")
    model = load_pretrained(ours_dir, head="masked_lm")

    def loss_fn(*batch):
        mlm, entity = model(*batch)
        return (mlm * ms.Tensor(weights[0])).sum() + (entity * ms.Tensor(weights[1])).sum()
    # the pooler feeds neither logit: transformers leaves its gradient None
    assert_gradients_match(model, loss_fn, arrays, hf_grads,
                           {"backbone.pooler.dense.weight", "backbone.pooler.dense.bias"})


def test_masked_positions_of_the_entity_head(tmp_path_factory):
    """Pretraining projects only the masked words and entities: the same logits there."""
    hf, _, ours_dir = converted("aware_narrow", "masked_lm", tmp_path_factory)
    arrays = inputs()
    theirs = torch_call(hf, arrays)
    words = np.array([[1, 3], [2, 4], [1, 2]], np.int32)
    entities = np.array([[0, 2], [1, 0], [0, 1]], np.int32)
    mlm, entity = run(load_pretrained(ours_dir, head="pretraining"), "graph",
                      arrays + (words, entities))
    expected = np.take_along_axis(theirs.logits.numpy(), words[..., None].astype(np.int64), 1)
    assert np.abs(mlm - expected).max() <= TOL
    expected = np.take_along_axis(theirs.entity_logits.numpy(),
                                  entities[..., None].astype(np.int64), 1)
    assert np.abs(entity - expected).max() <= TOL


@pytest.mark.parametrize("head", [None] + HEADS)
def test_hf_project_hf_is_bit_exact(head, tmp_path_factory):
    _, hf_dir, ours_dir = converted("aware_narrow", head, tmp_path_factory)
    back = str(tmp_path_factory.mktemp("luke-back") / "hf")
    convert(ours_dir, back)
    # lm_head.bias is tied to lm_head.decoder.bias: transformers saves it under either name
    tied = {"lm_head.decoder.bias": "lm_head.bias"}
    original = {tied.get(k, k): v for k, v in
                load_file(os.path.join(hf_dir, "model.safetensors")).items()}
    returned = load_file(os.path.join(back, "model.safetensors"))
    if head is None:  # a bare LukeModel saves its names unprefixed
        returned = {k[len("luke."):]: v for k, v in returned.items()}
    assert set(returned) == set(original)
    for name, value in original.items():
        assert np.array_equal(returned[name], value), name
    _, info = hf_class("luke", head).from_pretrained(back, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info


def _hf_arrays(case, head, tmp_path_factory):
    _, hf_dir, ours_dir = converted(case, head, tmp_path_factory)
    return load_file(os.path.join(hf_dir, "model.safetensors")), ours_dir


def _zoo_name(name):
    """The model zoo's convert_luke.py naming of a transformers LUKE weight."""
    if name.startswith("luke.pooler.dense."):
        return name.replace("luke.pooler.dense.", "pooler.")
    name = name.replace(".attention.self.", ".attention.self1.")
    if "LayerNorm" in name or "layer_norm" in name:
        return name.replace(".weight", ".gamma").replace(".bias", ".beta")
    if "embeddings." in name and not name.endswith("dense.weight"):
        return name.replace(".weight", ".embedding_table")
    return name


def test_zoo_checkpoint_converts_and_gets_entity_queries_from_query(tmp_path_factory, tmp_path):
    arrays, ours_dir = _hf_arrays("aware_narrow", "masked_lm", tmp_path_factory)
    plain = {k: v for k, v in arrays.items() if not any(q in k for q in ("w2e", "e2w", "e2e"))}
    zoo = {"network." + _zoo_name(k): v for k, v in plain.items()}
    zoo["moment1.network.luke.embeddings.word_embeddings.embedding_table"] = \
        plain["luke.embeddings.word_embeddings.weight"]
    ckpt = str(tmp_path / "luke.ckpt")
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in zoo.items()], ckpt)
    config = ModelConfig(**load_pretrained(ours_dir).config.to_dict())
    config.head = None
    config.save(str(tmp_path))
    notes = convert(ckpt, str(tmp_path / "out"), config_path=str(tmp_path / "config.yaml"))
    assert any("initialised them from each layer's query" in n for n in notes)
    ours = load_file(str(tmp_path / "out" / "model.safetensors"))
    layer = "backbone.encoder.layers.1.attention."
    query = plain["luke.encoder.layer.1.attention.self.query.weight"]
    assert np.array_equal(ours[layer + "entity_queries.w2e.weight"], query)
    assert np.array_equal(ours[layer + "entity_queries.e2w_e2e.weight"],
                          np.concatenate([query, query]))
    assert np.array_equal(ours["mlm.bias"], plain["lm_head.decoder.bias"])
    assert np.array_equal(ours["backbone.pooler.dense.weight"], plain["luke.pooler.dense.weight"])


def _write_original(folder, arrays, hidden_size):
    """The original release's layout: unprefixed pickled state dict, metadata.json, tsv."""
    os.makedirs(folder)
    state = {k[len("luke."):] if k.startswith("luke.") else k: torch.from_numpy(v)
             for k, v in arrays.items()}
    torch.save(state, os.path.join(folder, "pytorch_model.bin"))
    model_config = dict(TINY, **LUKE, hidden_size=hidden_size, bert_model_name="roberta-base",
                        hidden_act="gelu", attention_probs_dropout_prob=0.1,
                        hidden_dropout_prob=0.1, initializer_range=0.02)
    model_config.pop("pad_token_id")
    with open(os.path.join(folder, "metadata.json"), "w") as f:
        json.dump({"model_config": model_config, "max_mention_length": 30}, f)
    titles = ["[PAD]", "[UNK]", "[MASK]"] + [f"Title {i}" for i in range(20)]
    with open(os.path.join(folder, "entity_vocab.tsv"), "w") as f:
        f.writelines(f"{t}\t{i}\n" for i, t in enumerate(titles))


def test_original_release_converts_only_with_allow_pickle(tmp_path_factory, tmp_path):
    arrays, ours_dir = _hf_arrays("aware_narrow", "masked_lm", tmp_path_factory)
    arrays = {k: v for k, v in arrays.items() if not any(q in k for q in ("w2e", "e2w", "e2e"))}
    _write_original(str(tmp_path / "orig"), arrays, TINY["hidden_size"])
    with pytest.raises(UserError, match="allow_pickle"):
        convert(str(tmp_path / "orig"), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")
    convert(str(tmp_path / "orig"), str(tmp_path / "out"), allow_pickle=True)
    assert os.path.isfile(tmp_path / "out" / "entity_vocab.tsv")
    ours = load_file(str(tmp_path / "out" / "model.safetensors"))
    expected = load_file(os.path.join(ours_dir, "model.safetensors"))
    for name in ("backbone.entity_embeddings.entity_embeddings.embedding_table",
                 "entity_mlm.bias", "backbone.encoder.layers.0.attention.qkv.weight"):
        assert np.array_equal(ours[name], expected[name]), name


def test_mismatched_entity_table_is_one_error(tmp_path_factory, tmp_path):
    _, hf_dir, _ = converted("aware_narrow", None, tmp_path_factory)
    config = json.load(open(os.path.join(hf_dir, "config.json")))
    os.makedirs(tmp_path / "bad")
    for name in os.listdir(hf_dir):
        if name != "config.json":
            os.link(os.path.join(hf_dir, name), tmp_path / "bad" / name)
    config["entity_vocab_size"] = 50
    json.dump(config, open(tmp_path / "bad" / "config.json", "w"))
    with pytest.raises(UserError, match="entity_embeddings.embedding_table"):
        convert(str(tmp_path / "bad"), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_entity_heads_need_a_luke_model():
    with pytest.raises(UserError, match="needs a luke model"):
        build_model(ModelConfig(**TINY), "entity_classification")


def _labels(head, rng, batch):
    if head == "entity_classification":
        return rng.integers(0, 2, size=(batch, 3)).astype(np.float32)
    if head == "entity_span_classification":
        labels = rng.integers(0, 3, size=(batch, 4)).astype(np.int32)
        labels[1:, -1] = -1  # padded spans carry no loss
        return labels
    return rng.integers(0, 3, size=(batch,)).astype(np.int32)


LOSSES = {"entity_classification": multi_label_loss,
          "entity_pair_classification": cross_entropy,
          "entity_span_classification": token_loss,
          "sequence_classification": cross_entropy}


@pytest.mark.parametrize("head", list(LOSSES) + ["pretraining"])
def test_jit_training_step_lowers_loss(head):
    ms.set_seed(0)
    config = ModelConfig(model_type="luke", position_embedding_type="padding_offset",
                         **dict(TINY, **LUKE), num_labels=3)
    model = build_model(config, head)
    model.set_train(True)
    optimizer = nn.Adam(model.trainable_params(), learning_rate=3e-3)
    rng = np.random.default_rng(0)
    arrays = inputs(batch=4)
    if head == "pretraining":
        words = np.array([[1, 2]] * 4, np.int32)
        entities = np.array([[0, 1]] * 4, np.int32)
        targets = (np.take_along_axis(arrays[0], words, 1), np.take_along_axis(arrays[3], entities, 1))
        extra = (words, entities) + targets

        def loss_fn(*batch):
            mlm, entity = model(*batch[:9])
            ones = ms.ops.ones_like(batch[9]).astype(ms.float32)
            return weighted_cross_entropy(mlm, batch[9], ones) + \
                weighted_cross_entropy(entity, batch[10], ones)
    else:
        extra = (_labels(head, rng, 4),)
        loss_of = LOSSES[head]

        def loss_fn(*batch):
            return loss_of(model(*batch[:7]), batch[7])
    losses = step_losses(loss_fn, optimizer, [ms.Tensor(x) for x in tuple(arrays) + extra], 20)
    assert losses[-1] < 0.5 * losses[0], losses
