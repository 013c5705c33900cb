"""Names of the MindSpore model zoo's BERT checkpoints (official/nlp/Bert bert_model.py).

Zoo checkpoints nest the model under varying wrappers (`bert.bert.`, optimizer moments
`moment1.bert.bert.` ...). The backbone prefix is the shortest one in front of
`bert_embedding_lookup.embedding_table`; the pretraining heads cls1/cls2 sit one level up.
"""
import re
from typing import Dict, List, Tuple

import numpy as np

from src.errors import UserError
from src.models.config import ModelConfig

ANCHOR = "bert_embedding_lookup.embedding_table"
LEARNED_RELATIVE = "_generate_relative_positions_embeddings.embeddings_table"

_BACKBONE = [
    (r"bert_embedding_lookup\.embedding_table", "embeddings.word_embeddings.embedding_table"),
    (r"bert_embedding_postprocessor\.token_type_embedding\.embedding_table",
     "embeddings.token_type_embeddings.embedding_table"),
    (r"bert_embedding_postprocessor\.full_position_embedding\.embedding_table",
     "embeddings.position_embeddings.embedding_table"),
    (r"bert_embedding_postprocessor\.layernorm\.(gamma|beta)", r"embeddings.layer_norm.\1"),
    (r"bert_encoder\.layers\.(\d+)\.attention\.output\.dense\.(weight|bias)",
     r"encoder.layers.\1.attention.output.\2"),
    (r"bert_encoder\.layers\.(\d+)\.attention\.output\.layernorm\.(gamma|beta)",
     r"encoder.layers.\1.attention_norm.\2"),
    (r"bert_encoder\.layers\.(\d+)\.intermediate\.(weight|bias)",
     r"encoder.layers.\1.intermediate.\2"),
    (r"bert_encoder\.layers\.(\d+)\.output\.dense\.(weight|bias)", r"encoder.layers.\1.output.\2"),
    (r"bert_encoder\.layers\.(\d+)\.output\.layernorm\.(gamma|beta)",
     r"encoder.layers.\1.output_norm.\2"),
    (r"dense\.(weight|bias)", r"pooler.dense.\1"),
]
_HEADS = [
    (r"cls1\.dense\.(weight|bias)", r"mlm.transform.\1"),
    (r"cls1\.layernorm\.(gamma|beta)", r"mlm.layer_norm.\1"),
    (r"cls1\.output_bias", "mlm.bias"),
    (r"cls2\.dense\.(weight|bias)", r"pair_classifier.\1"),
]
_QKV = re.compile(r"bert_encoder\.layers\.(\d+)\.attention\.attention\.(query|key|value)_layer"
                  r"\.(weight|bias)")


def _backbone_prefix(names: List[str], source: str) -> str:
    anchors = [n[: -len(ANCHOR)] for n in names if n.endswith(ANCHOR)]
    if not anchors:
        raise UserError(f"{source}: not a model zoo BERT checkpoint (no parameter ending in "
                        f"'{ANCHOR}')")
    return min(anchors, key=lambda p: p.count("."))


def _rename(rest: str, table) -> str:
    for pattern, target in table:
        if re.fullmatch(pattern, rest):
            return re.sub(pattern, target, rest)
    return ""


def zoo_to_project(arrays: Dict[str, np.ndarray], config: ModelConfig,
                   source: str) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """Project-named arrays from zoo-named ones, and the names left out (optimizer state...)."""
    prefix = _backbone_prefix(list(arrays), source)
    head_prefix = prefix.rsplit(".", 2)[0] + "." if prefix.count(".") > 1 else ""
    out, qkv, skipped = {}, {}, []
    for name, value in arrays.items():
        if name.startswith(prefix):
            rest = name[len(prefix):]
            if rest.endswith(LEARNED_RELATIVE):
                raise UserError(f"{source}: {name} is a learned relative position table (the "
                                "zoo's use_relative_positions); NEZHA's relative positions are "
                                "functional, so this checkpoint cannot be converted")
            match = _QKV.fullmatch(rest)
            if match:
                qkv[(match.group(1), match.group(3), match.group(2))] = value
                continue
            target = _rename(rest, _BACKBONE)
            if target.startswith("embeddings.position_embeddings") and \
                    config.position_embedding_type == "functional_relative":
                skipped.append(name)
            elif target:
                out["backbone." + target] = value
                continue
        target = _rename(name[len(head_prefix):], _HEADS) if name.startswith(head_prefix) else ""
        if target:
            out[target] = value
        else:
            skipped.append(name)
    for (layer, kind, _), _ in sorted(qkv.items()):
        parts = [qkv.get((layer, kind, n)) for n in ("query", "key", "value")]
        if any(p is None for p in parts):
            raise UserError(f"{source}: layer {layer} lacks one of its query/key/value {kind}s")
        out[f"backbone.encoder.layers.{layer}.attention.qkv.{kind}"] = np.concatenate(parts, 0)
    return out, skipped


# The model zoo's LUKE (research/nlp/luke, convert_luke.py) keeps transformers' names but for
# MindSpore's embedding_table / gamma / beta, the attention cell `self1` and an unprefixed pooler.
LUKE_ANCHOR = "luke.embeddings.word_embeddings.embedding_table"
_LUKE_RENAMES = [(r"\.embedding_table$", ".weight"), (r"\.gamma$", ".weight"),
                 (r"\.beta$", ".bias"), (r"\.attention\.self1\.", ".attention.self."),
                 (r"^pooler\.(weight|bias)$", r"luke.pooler.dense.\1")]
_LUKE_PARTS = ("luke.", "pooler.", "lm_head.", "entity_predictions.", "qa_outputs.", "classifier.")


def zoo_luke_to_hf(arrays: Dict[str, np.ndarray], source: str
                   ) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """transformers' LUKE names from a zoo LUKE checkpoint, and the names left out
    (optimizer moments and the like, which sit under other prefixes)."""
    anchors = [n[: -len(LUKE_ANCHOR)] for n in arrays if n.endswith(LUKE_ANCHOR)]
    if not anchors:
        raise UserError(f"{source}: not a model zoo LUKE checkpoint (no parameter ending in "
                        f"'{LUKE_ANCHOR}')")
    wrapper = min(anchors, key=len)
    out, skipped = {}, []
    for name, value in arrays.items():
        rest = name[len(wrapper):] if name.startswith(wrapper) else ""
        if not rest.startswith(_LUKE_PARTS):
            skipped.append(name)
            continue
        for pattern, target in _LUKE_RENAMES:
            rest = re.sub(pattern, target, rest)
        out[rest] = value
    return out, skipped
