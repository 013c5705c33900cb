"""What LUKE's entity-task builders share: options, the LUKE tokenizer check, entity columns, output.

Feature rows carry the word columns every task has (input_ids, input_mask, segment_ids) and LUKE's
entity columns (entity_ids, entity_position_ids (E, max_mention_length) padded with -1,
entity_segment_ids, entity_attention_mask; padding entities are [PAD] with mask 0), plus the task's
label columns.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.data.tasks.features import FeatureSet, write_features
from src.data.json_files import load_json
from src.data.pretraining.luke import ENTITY_COLUMNS
from src.data.tokenization import Encoding, LukeTokenizer, load_tokenizer
from src.errors import UserError



@dataclass(frozen=True)
class EntityTaskOptions:
    """How entity-task features are made (recorded in the manifest)."""

    max_seq_length: int
    max_entity_length: int
    max_mention_length: int = 30
    context: str = "sentence"  # conll_spans: "document" adds the neighbouring sentences as LUKE does
    do_lower_case: bool | None = None  # for a WordPiece/SentencePiece word tokenizer; byte-level BPE keeps case

    def check(self) -> None:
        """Reject option values that cannot make features, naming the option."""
        for name in ("max_seq_length", "max_entity_length", "max_mention_length"):
            if getattr(self, name) < (4 if name == "max_seq_length" else 1):
                raise UserError(f"--{name} {getattr(self, name)}: too small")
        if self.context not in ("sentence", "document"):
            raise UserError(f"--context {self.context!r}: expected sentence or document")

    def encode(self, tokenizer: LukeTokenizer, text: str, spans: list[tuple[int, int]], task: str) -> Encoding:
        """One padded row of a text and its entity spans, in the task's mode."""
        return tokenizer.encode(text, entity_spans=spans, task=task, max_length=self.max_seq_length, padding=True,
                                max_entity_length=self.max_entity_length,
                                max_mention_length=self.max_mention_length)


def luke_tokenizer(model_dir: str, do_lower_case: bool | None = None) -> LukeTokenizer:
    """The LUKE tokenizer of a model directory; a directory without an entity vocabulary is a UserError."""
    tokenizer = load_tokenizer(model_dir, do_lower_case)
    if not isinstance(tokenizer, LukeTokenizer):
        raise UserError(f"{model_dir}: not a LUKE model directory (no entity vocabulary); expected "
                        "entity_vocab.json, entity_vocab.tsv or entity_vocab.jsonl beside the tokenizer")
    return tokenizer


def word_spans(words: list[str], leading_space: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """The words joined by single spaces (after one more in front with leading_space: LUKE's
    add_prefix_space), and each word's character span in that text."""
    spans, position = [], 1 if leading_space else 0
    for word in words:
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return (" " if leading_space else "") + " ".join(words), spans


def entity_columns(encodings: Sequence[Encoding], options: EntityTaskOptions) -> dict[str, np.ndarray]:
    """The word and entity columns of padded encodings, int32."""
    rows, length, entities = len(encodings), options.max_seq_length, options.max_entity_length
    mention = options.max_mention_length

    def column(values: list, shape: tuple[int, ...]) -> np.ndarray:
        return np.array(values, dtype=np.int32).reshape(rows, *shape)

    found = [encoding.entities for encoding in encodings]
    return {"input_ids": column([e.ids for e in encodings], (length,)),
            "input_mask": column([e.attention_mask for e in encodings], (length,)),
            "segment_ids": column([e.type_ids for e in encodings], (length,)),
            "entity_ids": column([e.entity_ids for e in found], (entities,)),
            "entity_position_ids": column([e.entity_position_ids for e in found], (entities, mention)),
            "entity_segment_ids": column([e.entity_token_type_ids for e in found], (entities,)),
            "entity_attention_mask": column([e.entity_attention_mask for e in found], (entities,))}


def read_json_records(path: str, fields: dict[str, tuple[type, ...]], layout: str) -> list[tuple[str, dict]]:
    """(origin, record) of a JSON list of objects, each checked to have `fields` of the given types."""
    data = load_json(path)
    if not isinstance(data, list):
        raise UserError(f"{path}: top level is a {type(data).__name__}; expected a JSON list of {layout} records")
    records = []
    for index, record in enumerate(data):
        origin = f"{path}: record {index}"
        if not isinstance(record, dict):
            raise UserError(f"{origin}: expected a JSON object ({layout} format)")
        for name, types in fields.items():
            value = record.get(name)
            if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
                expected = " or ".join("null" if kind is type(None) else kind.__name__ for kind in types)
                raise UserError(f"{origin}: field {name!r} is {value!r}; expected {expected} ({layout} format)")
        records.append((origin, record))
    return records


def write_entity_features(output: str, built: FeatureSet, *, tokenizer: LukeTokenizer, **kwargs: Any) -> dict:
    """write_features with the entity vocabulary recorded beside the tokenizer."""
    vocab = tokenizer.entity_vocab
    extra = {**kwargs.pop("extra", {}), "entity_vocab": {"file": str(vocab.source), "size": vocab.size,
                                                         "fingerprint": vocab.fingerprint(),
                                                         "pad_id": vocab.pad_id, "mask_id": vocab.mask_id}}
    return write_features(output, built, tokenizer=tokenizer, extra=extra, **kwargs)
