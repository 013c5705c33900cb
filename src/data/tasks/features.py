"""What the NER, classification and RACE feature builders share: line readers, labels, special-token layout, output.

Texts are tokenized without special tokens, truncated here and wrapped in the tokenizer's own special-token
layout (read off its post-processor), so a text shared by many features (a RACE article) is tokenized once
and every truncation is known and counted. `longest_first` reproduces the `tokenizers` library's rule, so
pairs come out exactly as `Tokenizer.encode(a, b, max_length=...)` makes them.
"""
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from src.data.json_files import load_json
from src.data.tasks.task_records import write_task_dataset
from src.data.tokenization import Tokenizer
from src.errors import UserError

log = logging.getLogger(__name__)
SPLITS = ("train", "eval")
IGNORE_LABEL = -1
LABEL2ID = "label2id.json"  # written beside train features; --label_file takes it for eval
FIRST, SECOND = -1, -2
ENCODE_CHUNK = 4096
_T = TypeVar("_T")


class SkipRecord(Exception):
    """Raised by a record parser for a record the builder cannot use; the reason is counted, not fatal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class FeatureSet:
    """A builder's output: numpy columns plus what it read, dropped and altered, each counted by reason."""

    columns: dict[str, np.ndarray]
    counts: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    handled: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Layout:
    """Where a tokenizer puts its special tokens: slots of (token id, or FIRST/SECOND for a text; type id)."""

    single: tuple[tuple[int, int], ...]
    pair: tuple[tuple[int, int], ...]

    def specials(self, is_pair: bool) -> int:
        """How many special tokens wrap one text (or a pair)."""
        slots = self.pair if is_pair else self.single
        return sum(1 for token, _ in slots if token not in (FIRST, SECOND))

    def first_offset(self) -> int:
        """Position of a single text's first token (the special tokens before it)."""
        return next(index for index, (token, _) in enumerate(self.single) if token == FIRST)

    def assemble(self, first: list[int], second: list[int] | None = None) -> tuple[list[int], list[int]]:
        """Ids and type ids of one input: the texts' token ids put into the layout's slots."""
        ids: list[int] = []
        types: list[int] = []
        for token, type_id in self.single if second is None else self.pair:
            piece = first if token == FIRST else second if token == SECOND else [token]
            ids.extend(piece)
            types.extend([type_id] * len(piece))
        return ids, types


def special_layout(tokenizer: Tokenizer) -> Layout:
    """Read the special-token layout off the tokenizer's post-processor by encoding a probe text and pair."""
    return Layout(single=_slots(tokenizer.backend.encode("a")), pair=_slots(tokenizer.backend.encode("a", "b")))


def _slots(encoding: Any) -> tuple[tuple[int, int], ...]:
    """Collapse an encoding into layout slots: each special token, and one slot per text."""
    slots: list[tuple[int, int]] = []
    previous = None
    for token, sequence, type_id in zip(encoding.ids, encoding.sequence_ids, encoding.type_ids):
        if sequence is None:
            slots.append((token, type_id))
        elif sequence != previous:
            slots.append((FIRST if sequence == 0 else SECOND, type_id))
        previous = sequence
    return tuple(slots)


def longest_first(first: int, second: int, budget: int) -> tuple[int, int]:
    """Kept lengths of a pair under `tokenizers`' longest_first rule (budget excludes special tokens)."""
    if first + second <= budget:
        return first, second
    short, long_ = sorted((first, second))
    long_ = short if short > budget else max(short, budget - short)
    if short + long_ > budget:
        short, long_ = budget // 2, budget // 2 + budget % 2
    kept = (long_, short) if first > second else (short, long_)
    return min(first, kept[0]), min(second, kept[1])


def check_budget(max_seq_length: int, layout: Layout, is_pair: bool) -> int:
    """Tokens left for the texts after the special tokens; none left is a UserError naming the option."""
    budget = max_seq_length - layout.specials(is_pair)
    if budget < 1:
        raise UserError(f"--max_seq_length {max_seq_length} is too small: the special tokens alone take "
                        f"{layout.specials(is_pair)}")
    return budget


def token_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text without special tokens, in one parallel call."""
    return [encoding.ids for encoding in tokenizer.backend.encode_batch(texts, add_special_tokens=False)]


def pack(rows: Sequence[tuple[list[int], list[int]]], max_seq_length: int, pad_id: int) -> dict[str, np.ndarray]:
    """Pad assembled (ids, type ids) rows to max_seq_length: input_ids, input_mask, segment_ids (int32)."""
    input_ids = np.full((len(rows), max_seq_length), pad_id, dtype=np.int32)
    input_mask = np.zeros((len(rows), max_seq_length), dtype=np.int32)
    segment_ids = np.zeros((len(rows), max_seq_length), dtype=np.int32)
    for row, (ids, types) in enumerate(rows):
        input_ids[row, :len(ids)] = ids
        input_mask[row, :len(ids)] = 1
        segment_ids[row, :len(types)] = types
    return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}


def encode_texts(tokenizer: Tokenizer, layout: Layout, texts: list[str], pairs: list[str] | None,
                 max_seq_length: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Encode texts (or pairs) as `encode(..., max_length, padding=True)` would; also which were truncated."""
    budget = check_budget(max_seq_length, layout, pairs is not None)
    firsts = token_ids(tokenizer, texts)
    seconds = token_ids(tokenizer, pairs) if pairs is not None else None
    rows, truncated = [], np.zeros(len(texts), dtype=bool)
    for index, first in enumerate(firsts):
        if seconds is None:
            kept = first[:budget]
            rows.append(layout.assemble(kept))
            truncated[index] = len(kept) < len(first)
            continue
        second = seconds[index]
        keep_first, keep_second = longest_first(len(first), len(second), budget)
        rows.append(layout.assemble(first[:keep_first], second[:keep_second]))
        truncated[index] = keep_first + keep_second < len(first) + len(second)
    return pack(rows, max_seq_length, tokenizer.pad_token_id), truncated


def chunks(items: Sequence[_T], size: int = ENCODE_CHUNK) -> Iterator[Sequence[_T]]:
    """Consecutive slices of at most `size` items (tokenize in bounded batches, update progress per batch)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def concat_columns(parts: list[dict[str, np.ndarray]], empty: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Join per-chunk columns; `empty` gives each column's zero-row shape and dtype when there were no chunks."""
    if not parts:
        return empty
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def read_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """(line number, text without the line break) of a UTF-8 text file; bad bytes are a UserError naming the line."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder; expected a text file") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise UserError(f"{path}: line {number}: byte {err.start + 1} is not UTF-8; "
                                "expected a UTF-8 text file") from None
            yield number, (line.removeprefix("\ufeff") if number == 1 else line).rstrip("\r\n")


def read_tsv(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank row: tab-separated with quotes kept as text (GLUE's QUOTE_NONE)."""
    for number, line in read_lines(path):
        if line.strip():
            yield number, line.split("\t")


def load_label_list(source: str | os.PathLike[str] | Sequence[str]) -> tuple[list[str], str]:
    """Labels in id order, and where they came from: a list, a train output folder, its manifest or
    label2id.json, or a text file."""
    if not isinstance(source, (str, os.PathLike)):
        return _checked_labels(list(source), "the given label list"), "the given label list"
    path = Path(source)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.is_file():
        raise UserError(f"{path}: no such file; expected the train split's output folder, its manifest.json, "
                        "or a text file with one label per line")
    if path.suffix == ".json":
        loaded = load_json(path)
        labels = loaded
        if isinstance(loaded, dict):
            labels = loaded["labels"] if "labels" in loaded else _by_id(loaded)
        if not isinstance(labels, list):
            raise UserError(f"{path}: no label list; expected a manifest with \"labels\", a {LABEL2ID} "
                            "mapping or a JSON list of labels")
    else:
        labels = [line.strip() for _, line in read_lines(path) if line.strip()]
    return _checked_labels(labels, str(path)), str(path)


def _by_id(mapping: dict[str, Any]) -> list[str] | None:
    """The labels of a label2id mapping in id order (ids 0..n-1), or None if it is not one."""
    ids = list(mapping.values())
    if not ids or not all(type(value) is int for value in ids) or sorted(ids) != list(range(len(ids))):
        return None
    return sorted(mapping, key=mapping.get)


def _checked_labels(labels: list[Any], source: str) -> list[str]:
    """A label list must be non-empty distinct strings."""
    if not labels or not all(isinstance(label, str) for label in labels):
        raise UserError(f"{source}: expected a non-empty list of label names (strings)")
    duplicates = sorted(label for label, count in Counter(labels).items() if count > 1)
    if duplicates:
        raise UserError(f"{source}: label {duplicates[0]!r} is listed twice")
    return labels


def resolve_labels(split: str, label_file: str | os.PathLike[str] | Sequence[str] | None,
                   official: Sequence[str] | None = None,
                   train_labels: Sequence[str] | None = None) -> tuple[list[str], str]:
    """The label list (id order) and its source: label_file, else the official order, else the train split's."""
    if label_file is not None:
        return load_label_list(label_file)
    if official is not None:
        return list(official), "the dataset's official label order"
    if split == "eval" or train_labels is None:
        raise UserError("the eval split must use the train split's labels: pass its output folder "
                        "(or its manifest.json) as the label file")
    return list(train_labels), "the labels of the train split"


def check_labelled(split: str, unlabeled_origins: Iterable[str]) -> None:
    """The train split needs a label on every example: the first one without is a UserError naming it."""
    if split == "train":
        origin = next(iter(unlabeled_origins), None)
        if origin is not None:
            raise UserError(f"{origin}: no label; the train split needs labelled data (use --split eval for a "
                            "test file)")


def label_id(label2id: dict[str, int], label: str, origin: str) -> int:
    """Id of a label; a label outside the list is a UserError naming it and where it was read."""
    if label not in label2id:
        known = ", ".join(list(label2id)[:20]) + (", ..." if len(label2id) > 20 else "")
        raise UserError(f"{origin}: label {label!r} is not one of the {len(label2id)} known labels ({known}); "
                        "the eval split must use labels the train split has")
    return label2id[label]


def check_split(split: str) -> None:
    """The split must be train or eval."""
    if split not in SPLITS:
        raise UserError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")


def write_features(output: str, built: FeatureSet, *, task: str, dataset: str, split: str, options: Any,
                   labels: list[str], label_source: str, input_path: str, tokenizer: Tokenizer, model_dir: str,
                   overwrite: bool, started: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the columns and manifest through write_task_dataset, then log a one-line summary."""
    rows = len(next(iter(built.columns.values())))
    if not rows:
        raise UserError(f"{input_path}: no usable {dataset} examples (skipped: {_reasons(built.skipped)})")
    manifest = {
        "task": task, "dataset": dataset, "split": split,
        "counts": {**dict(built.counts), "features": rows},
        "skipped": _nonzero(built.skipped),
        "handled": _nonzero(built.handled),
        "options": asdict(options),
        "labels": labels, "label_source": label_source,
        "input": os.path.abspath(input_path),
        "tokenizer": {"model_dir": os.path.abspath(model_dir), "kind": tokenizer.kind,
                      "fingerprint": tokenizer.fingerprint()},
        **(extra or {}),
    }
    label2id = {label: index for index, label in enumerate(labels)}
    extra_files = {LABEL2ID: json.dumps(label2id, indent=2, ensure_ascii=False) + "\n"} if labels else None
    written = write_task_dataset(output, built.columns, manifest, overwrite=overwrite, files=extra_files)
    log.info("wrote %s: %d %s %s features (%s) from %s in %.1f s; skipped: %s; handled: %s", output, rows,
             dataset, split, ", ".join(f"{key} {value}" for key, value in built.counts.items()), input_path,
             time.monotonic() - started, _reasons(built.skipped), _reasons(built.handled))
    return written


def _nonzero(counter: Counter) -> dict[str, int]:
    """The reasons that occurred, sorted (a manifest lists what happened, not every possible reason)."""
    return {reason: count for reason, count in sorted(counter.items()) if count}


def _reasons(counter: Counter) -> str:
    """'reason n, reason n' for a log line, or 'none'."""
    return ", ".join(f"{reason} {count}" for reason, count in _nonzero(counter).items()) or "none"
