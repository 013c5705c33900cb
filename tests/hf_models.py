"""Tiny random HF transformers models, saved locally, for parity tests (no downloads)."""

import numpy as np
import torch
import transformers as T

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=64, type_vocab_size=2)
FAMILIES = {"bert": (T.BertConfig, "Bert"), "albert": (T.AlbertConfig, "Albert"),
            "roberta": (T.RobertaConfig, "Roberta"), "ernie": (T.ErnieConfig, "Ernie"),
            "luke": (T.LukeConfig, "Luke")}
HEAD_SUFFIX = {None: "Model", "pretraining": "ForPreTraining", "masked_lm": "ForMaskedLM",
               "question_answering": "ForQuestionAnswering",
               "token_classification": "ForTokenClassification",
               "sequence_classification": "ForSequenceClassification",
               "multiple_choice": "ForMultipleChoice",
               "entity_classification": "ForEntityClassification",
               "entity_pair_classification": "ForEntityPairClassification",
               "entity_span_classification": "ForEntitySpanClassification"}
LUKE = dict(pad_token_id=1, max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5,
            entity_vocab_size=23, entity_emb_size=16)


def hf_class(family: str, head):
    if family in ("roberta", "luke") and head == "pretraining":
        head = "masked_lm"
    return getattr(T, FAMILIES[family][1] + HEAD_SUFFIX[head])


def make_hf_model(family: str, head, folder: str, seed: int = 0, **overrides):
    """Build, randomise every weight (so no LayerNorm stays at 1/0) and save an HF model."""
    torch.manual_seed(seed)
    values = dict(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if family == "albert":
        values.update(embedding_size=16, classifier_dropout_prob=0.0)
    if family == "roberta":
        values.update(pad_token_id=1, max_position_embeddings=66)
    if family == "luke":
        values.update(LUKE)
    values.update(overrides)
    config = FAMILIES[family][0](**values)
    model = hf_class(family, head)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.5 if "LayerNorm" in name or "norm" in name else 0.1)
                    + (1.0 if name.endswith(("LayerNorm.weight", "norm.weight")) else 0.0))
        if family == "luke" and hasattr(model, "lm_head"):
            # the released LUKE ties its word decoder to the word embeddings; transformers 5's
            # LukeForMaskedLM no longer ties them itself
            model.lm_head.decoder.weight.copy_(model.luke.embeddings.word_embeddings.weight)
    model.save_pretrained(folder)
    return model


def sample_inputs(family: str, batch: int = 3, length: int = 11, seed: int = 1, vocab: int = 99):
    """Random ids with a padded tail on all but the first row."""
    rng = np.random.default_rng(seed)
    pad = 1 if family in ("roberta", "luke") else 0
    ids = rng.integers(5, vocab, size=(batch, length)).astype(np.int32)
    mask = np.ones((batch, length), dtype=np.int32)
    for row in range(1, batch):
        mask[row, length - 2 * row:] = 0
    ids[mask == 0] = pad
    types = np.zeros_like(ids)
    types[:, length // 2:] = 0 if family == "luke" else 1  # LUKE has one token type
    types[mask == 0] = 0
    return ids, mask, types


def sample_entities(word_mask, entities: int = 4, mention: int = 3, seed: int = 2,
                    vocab: int = 23, pad_id: int = 0):
    """Entity inputs over the real words of word_mask: mentions of 1..mention tokens at
    random starts, the last entities of later rows padded (id pad_id, mask 0, positions -1)."""
    rng = np.random.default_rng(seed)
    batch = len(word_mask)
    ids = rng.integers(pad_id + 1, vocab, size=(batch, entities)).astype(np.int32)
    mask = np.ones((batch, entities), dtype=np.int32)
    types = np.zeros((batch, entities), dtype=np.int32)
    positions = np.full((batch, entities, mention), -1, dtype=np.int32)
    for row in range(batch):
        real = int(word_mask[row].sum())
        for e in range(entities):
            if row and e >= entities - row:
                ids[row, e], mask[row, e] = pad_id, 0
                continue
            size = 1 + e % mention
            start = int(rng.integers(1, real - size))
            positions[row, e, :size] = np.arange(start, start + size)
    return ids, mask, types, positions


def torch_entities(ids, mask, types, positions):
    return dict(entity_ids=torch.tensor(ids, dtype=torch.long),
                entity_attention_mask=torch.tensor(mask, dtype=torch.long),
                entity_token_type_ids=torch.tensor(types, dtype=torch.long),
                entity_position_ids=torch.tensor(positions, dtype=torch.long))


def torch_inputs(ids, mask, types):
    return dict(input_ids=torch.tensor(ids, dtype=torch.long),
                attention_mask=torch.tensor(mask, dtype=torch.long),
                token_type_ids=torch.tensor(types, dtype=torch.long))


# the tied tables are listed under the heads that read them
TIED = {"mlm.word_embeddings": "backbone.embeddings.word_embeddings.embedding_table",
        "entity_mlm.word_embeddings": "backbone.entity_embeddings.entity_embeddings.embedding_table"}


def assert_gradients_match(model, loss_fn, arrays, hf_grads, unchecked=frozenset(), tol=1e-4):
    """Every parameter's graph-mode gradient of loss_fn(*arrays) equals transformers' (by the
    conversion's name pairs), within tol of each tensor's largest gradient; only `unchecked`
    parameters go without a counterpart."""
    import mindspore as ms
    from src.models.hf_names import all_pairs
    params = model.trainable_params()
    grads = ms.jit(ms.grad(loss_fn, None, params))(*[ms.Tensor(x) for x in arrays])
    ours = {TIED.get(p.name, p.name): g.asnumpy() for p, g in zip(params, grads)}
    checked = set()
    for name, hf_names in all_pairs(model.config, model.head_name):
        if name in ours and all(n in hf_grads for n in hf_names):
            expected = np.concatenate([hf_grads[n] for n in hf_names], 0)
            scale = max(np.abs(expected).max(), 1e-6)
            assert np.abs(ours[name] - expected).max() <= tol * scale, name
            checked.add(name)
    assert set(ours) - checked == set(unchecked), sorted(set(ours) - checked)
