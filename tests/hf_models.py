"""Tiny random HF transformers models, saved locally, for parity tests (no downloads)."""

import numpy as np
import torch
import transformers as T

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=64, type_vocab_size=2)
FAMILIES = {"bert": (T.BertConfig, "Bert"), "albert": (T.AlbertConfig, "Albert"),
            "roberta": (T.RobertaConfig, "Roberta"), "ernie": (T.ErnieConfig, "Ernie")}
HEAD_SUFFIX = {None: "Model", "pretraining": "ForPreTraining", "masked_lm": "ForMaskedLM",
               "question_answering": "ForQuestionAnswering",
               "token_classification": "ForTokenClassification",
               "sequence_classification": "ForSequenceClassification",
               "multiple_choice": "ForMultipleChoice"}


def hf_class(family: str, head):
    if family == "roberta" and head == "pretraining":
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
    values.update(overrides)
    config = FAMILIES[family][0](**values)
    model = hf_class(family, head)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.5 if "LayerNorm" in name or "norm" in name else 0.1)
                    + (1.0 if name.endswith(("LayerNorm.weight", "norm.weight")) else 0.0))
    model.save_pretrained(folder)
    return model


def sample_inputs(family: str, batch: int = 3, length: int = 11, seed: int = 1, vocab: int = 99):
    """Random ids with a padded tail on all but the first row."""
    rng = np.random.default_rng(seed)
    pad = 1 if family == "roberta" else 0
    ids = rng.integers(5, vocab, size=(batch, length)).astype(np.int32)
    mask = np.ones((batch, length), dtype=np.int32)
    for row in range(1, batch):
        mask[row, length - 2 * row:] = 0
    ids[mask == 0] = pad
    types = np.zeros_like(ids)
    types[:, length // 2:] = 1
    types[mask == 0] = 0
    return ids, mask, types


def torch_inputs(ids, mask, types):
    return dict(input_ids=torch.tensor(ids, dtype=torch.long),
                attention_mask=torch.tensor(mask, dtype=torch.long),
                token_type_ids=torch.tensor(types, dtype=torch.long))
