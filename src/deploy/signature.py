"""What an exported graph takes and gives: per-model input specifications and per-head outputs.

Each input is named, typed and shaped with symbolic dimensions ("batch", "seq", "choices",
and for LUKE "entities", "mention"); export.py turns the symbols into numbers (or None with
--dynamic) and writes them into the sidecar, so a runtime needs nothing else. LUKE takes its
four entity inputs after the words (DESIGN.md) and gives entity outputs beside word ones.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from src.errors import UserError
from src.models.config import ModelConfig
from src.models.heads import PAIR_OBJECTIVE

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
ENTITY_INPUTS = ("entity_ids", "entity_attention_mask", "entity_token_type_ids")
MENTION_INPUT = "entity_position_ids"  # (..., entities, mention): token indices, -1 past the mention
# A RACE question has four options; a multiple-choice export fixes the count unless --dynamic.
DEFAULT_CHOICES = 4
# The sequence length of an export (and of predict.py's features) where no task.json gives one.
DEFAULT_SEQ_LENGTH = 128


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, dtype, what each axis is (`axes`: "batch", "seq", ...)
    and its size (`dims`: numbers, None where the graph leaves it free)."""

    name: str
    dtype: str
    axes: Tuple
    dims: Tuple

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.dims),
                "axes": list(self.axes)}

    @staticmethod
    def from_dict(values: dict) -> "TensorSpec":
        return TensorSpec(values["name"], values["dtype"], tuple(values["axes"]),
                          tuple(values["shape"]))


def model_inputs(config: ModelConfig, head: Optional[str]) -> List[TensorSpec]:
    """The inputs of a model and head, in call order, with symbolic dims."""
    lead = ("batch", "choices") if head == "multiple_choice" else ("batch",)
    named = [(name, lead + ("seq",)) for name in TEXT_INPUTS]
    if config.model_type == "luke":
        named += [(name, lead + ("entities",)) for name in ENTITY_INPUTS]
        named.append((MENTION_INPUT, lead + ("entities", "mention")))
    return [TensorSpec(name, "int32", axes, axes) for name, axes in named]


def model_outputs(config: ModelConfig, head: Optional[str]) -> List[TensorSpec]:
    """The outputs of a model and head, in the order the graph returns them."""
    logits = ("batch", "seq", "labels")
    vocabulary = ("batch", "seq", "vocab")
    outputs = {
        None: [("sequence_output", ("batch", "seq", "hidden")), ("pooled_output", ("batch", "hidden"))],
        "masked_lm": [("mlm_logits", vocabulary)],
        "question_answering": [("start_logits", ("batch", "seq")), ("end_logits", ("batch", "seq"))],
        "token_classification": [("logits", logits)],
        "sequence_classification": [("logits", ("batch", "labels"))],
        "multiple_choice": [("logits", ("batch", "choices"))],
    }
    if config.model_type == "luke":
        named = luke_outputs(head, outputs)
    elif head == "pretraining":
        pair = [("pair_logits", ("batch", "pair"))] if config.model_type in PAIR_OBJECTIVE else []
        named = [("mlm_logits", vocabulary)] + pair
    else:
        named = outputs[head]
    return [TensorSpec(name, "float32", axes, axes) for name, axes in named]


def luke_outputs(head: Optional[str], word_outputs: Dict) -> List[Tuple[str, Tuple]]:
    """LUKE's outputs: the backbone adds the entity states, masked LM the masked-entity logits,
    the entity heads read entity states; the word heads are the word families'."""
    entities = ("batch", "entities")
    named = {
        None: word_outputs[None] + [("entity_sequence_output", entities + ("hidden",))],
        "masked_lm": word_outputs["masked_lm"] + [("entity_logits", entities + ("entity_vocab",))],
        "entity_classification": [("logits", ("batch", "labels"))],
        "entity_pair_classification": [("logits", ("batch", "labels"))],
        "entity_span_classification": [("logits", entities + ("labels",))],
    }
    head = "masked_lm" if head == "pretraining" else head  # LUKE's pretraining head is its masked LM
    return named[head] if head in named else word_outputs[head]


def concrete(specs: Sequence[TensorSpec], sizes: Dict[str, Optional[int]]) -> List[TensorSpec]:
    """The specs with each symbol replaced by its size (None: left free in the graph)."""
    return [TensorSpec(s.name, s.dtype, s.axes, tuple(sizes[a] for a in s.axes)) for s in specs]


def position_limit(config: ModelConfig) -> int:
    """The longest sequence the position table covers (RoBERTa's count from pad + 1)."""
    limit = config.max_position_embeddings
    if config.position_embedding_type == "padding_offset":
        limit -= config.pad_token_id + 1
    return limit


def longest_sequence(config: ModelConfig) -> Optional[int]:
    """The longest input the model takes (None: NEZHA's functional positions have no table)."""
    return None if config.position_embedding_type == "functional_relative" else position_limit(config)


def check_length(config: ModelConfig, seq_length: int, source: str) -> None:
    longest = longest_sequence(config)
    if seq_length < 1 or (longest is not None and seq_length > longest):
        raise UserError(f"--seq_length {seq_length}: {source} covers 1 to {longest} tokens")
