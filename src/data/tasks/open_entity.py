"""Open Entity (entity typing) in the LUKE repository's format -> LUKE features.

Input: train.json / dev.json / test.json as LUKE's (and ERNIE's) Open Entity release holds them, a JSON
list of {"sent": text, "start": int, "end": int, "labels": [type, ...]} where sent[start:end] is the
mention; multi-label over the 9 general types. Encoded as transformers' entity_classification: <ent>
before and after the mention, one [MASK] entity over it. label_ids is the multi-hot row of the labels
(all -1 for a record without labels). A mention cut away by max_seq_length is skipped in the train
split and kept as an entity-less row in the eval split (so its gold types still count), both counted.
"""
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from src.data.tasks.features import FeatureSet, check_labelled, check_split, label_id, resolve_labels
from src.data.tasks.entity_features import (EntityTaskOptions, entity_columns, luke_tokenizer,
                                            read_json_records, write_entity_features)
from src.data.tokenization import LukeTokenizer
from src.errors import UserError

TYPES = ("entity", "event", "group", "location", "object", "organization", "person", "place", "time")
TASK = "entity_classification"


@dataclass(frozen=True)
class TypingExample:
    """One mention: the sentence, the mention's character span, its types (None when unlabeled)."""

    text: str
    span: tuple[int, int]
    labels: list[str] | None
    origin: str


def read_open_entity(path: str) -> list[TypingExample]:
    """The mentions of an Open Entity JSON file."""
    fields = {"sent": (str,), "start": (int,), "end": (int,), "labels": (list, type(None))}
    examples = []
    for origin, record in read_json_records(path, fields, "Open Entity"):
        text, start, end, labels = record["sent"], record["start"], record["end"], record.get("labels")
        if not 0 <= start < end <= len(text):
            raise UserError(f"{origin}: mention [{start}, {end}) is not inside the {len(text)}-character sentence")
        if labels is not None and not all(isinstance(label, str) for label in labels):
            raise UserError(f"{origin}: \"labels\" must be a list of type names")
        examples.append(TypingExample(text, (start, end), labels, origin))
    return examples


def build_typing_features(examples: Sequence[TypingExample], tokenizer: LukeTokenizer, options: EntityTaskOptions,
                          label2id: dict[str, int], split: str) -> FeatureSet:
    """Columns: the word and entity columns, label_ids (N, types) multi-hot, example_index (N,)."""
    built = FeatureSet(columns={})
    encodings, labels, indexes = [], [], []
    for index, example in enumerate(tqdm(examples, desc="open entity features", unit="mention", disable=None)):
        built.counts["mentions"] += 1
        encoding = options.encode(tokenizer, example.text, [example.span], TASK)
        if encoding.entities.cut_by_truncation:
            if split == "train":
                built.skipped["mention_beyond_max_seq_length"] += 1
                continue
            built.handled["mention_beyond_max_seq_length_kept_without_entity"] += 1
        row = np.full(len(label2id), -1 if example.labels is None else 0, dtype=np.int32)
        for label in example.labels or ():
            row[label_id(label2id, label, example.origin)] = 1
        encodings.append(encoding)
        labels.append(row)
        indexes.append(index)
    built.columns = {**entity_columns(encodings, options),
                     "label_ids": np.array(labels, dtype=np.int32).reshape(len(labels), len(label2id)),
                     "example_index": np.array(indexes, dtype=np.int32)}
    return built


def create_open_entity_data(input_path: str, model_dir: str, output: str, options: EntityTaskOptions,
                            split: str = "train", overwrite: bool = False,
                            label_file: str | None = None) -> dict:
    """Read an Open Entity file, build LUKE features and write them with a manifest."""
    started = time.monotonic()
    options.check()
    check_split(split)
    examples = read_open_entity(input_path)
    check_labelled(split, (example.origin for example in examples if example.labels is None))
    labels, source = resolve_labels(split, label_file, official=TYPES)
    tokenizer = luke_tokenizer(model_dir, options.do_lower_case)
    built = build_typing_features(examples, tokenizer, options, {label: i for i, label in enumerate(labels)}, split)
    return write_entity_features(output, built, tokenizer=tokenizer, task="open_entity", dataset="open_entity",
                                 split=split, options=options, labels=labels, label_source=source,
                                 input_path=input_path, model_dir=model_dir, overwrite=overwrite, started=started,
                                 extra={"multi_label": True})
