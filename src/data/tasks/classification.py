"""Sentence and sentence-pair classification data: GLUE TSVs, CLUE JSON lines and ChnSentiCorp -> features.

Each dataset's files are read with their real layout: GLUE TSVs by header name (tab-separated, quotes kept as
text, as GLUE's loaders read them; CoLA's train/dev files have no header), CLUE files as JSON lines. Label ids
follow each dataset's official label order (BERT's run_classifier / CLUE's baselines); STS-B is regression
with float32 targets. Rows without a label (test files) get label -1 and are counted; rows a builder cannot
use (QQP rows with missing fields, CMNLI / OCNLI '-' labels: no annotator majority) are skipped and counted.
CSL pairs (keywords joined by spaces, abstract) and CLUEWSC2020's marked text ('_' around span1, '[' ']'
around span2) follow CLUE's baseline.
"""
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from src.data.tasks.features import (IGNORE_LABEL, FeatureSet, SkipRecord, check_labelled, check_split, chunks,
                               concat_columns, encode_texts, label_id, pack, read_tsv, resolve_labels,
                               special_layout, write_features)
from src.data.json_files import iter_json_lines
from src.data.tokenization import Tokenizer, load_tokenizer
from src.errors import UserError

BINARY = ("0", "1")
NLI = ("contradiction", "entailment", "neutral")
ENTAILMENT = ("entailment", "not_entailment")
TNEWS = tuple(str(100 + index) for index in range(17) if index not in (5, 11))
IFLYTEK = tuple(str(index) for index in range(119))


@dataclass(frozen=True)
class ClassificationOptions:
    """How classification features are made (recorded in the manifest)."""

    dataset: str
    max_seq_length: int = 128
    do_lower_case: bool | None = None

    def check(self) -> None:
        """Reject option values that cannot make features, naming the option."""
        dataset_spec(self.dataset)
        if self.max_seq_length < 3:
            raise UserError(f"--max_seq_length {self.max_seq_length}: expected at least 3")


@dataclass(frozen=True)
class ClassificationExample:
    """One text (or pair) with its label (str, float for regression, None if unlabeled) and origin."""

    text_a: str
    text_b: str | None
    label: str | float | None
    origin: str


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset's file layout: format, text and label fields, official labels (None = regression)."""

    file_format: str
    text_a: str
    text_b: str | None
    label: str
    labels: tuple[str, ...] | None
    columns: tuple[str, ...] | None = None
    skip_labels: tuple[str, ...] = ()
    texts: Callable[[dict[str, Any], str], tuple[str, str | None]] | None = None


def _csl_texts(record: dict[str, Any], origin: str) -> tuple[str, str | None]:
    """CSL as CLUE's baseline pairs it: (keywords joined by spaces, abstract)."""
    keywords, abstract = record.get("keyword"), record.get("abst")
    if keywords is None or abstract is None:
        raise SkipRecord("missing_fields")
    if not isinstance(keywords, list) or not all(isinstance(word, str) for word in keywords):
        raise UserError(f"{origin}: \"keyword\" must be a list of strings (CSL format)")
    return " ".join(keywords), _text(abstract, "abst", origin)


def _wsc_texts(record: dict[str, Any], origin: str) -> tuple[str, str | None]:
    """CLUEWSC2020 as CLUE's baseline marks it: '_' around span1 (the candidate), '[' ']' around span2 (pronoun)."""
    text, target = record.get("text"), record.get("target")
    if text is None or target is None:
        raise SkipRecord("missing_fields")
    text = _text(text, "text", origin)
    spans = [_wsc_span(target, number, text, origin) for number in (1, 2)]
    (start1, end1), (start2, end2) = spans
    if start1 < end2 and start2 < end1:
        raise SkipRecord("overlapping_spans")
    marks = sorted([(start1, end1, "_", "_"), (start2, end2, "[", "]")])
    pieces, position = [], 0
    for start, end, opening, closing in marks:
        pieces += [text[position:start], opening, text[start:end], closing]
        position = end
    return "".join(pieces + [text[position:]]), None


def _wsc_span(target: object, number: int, text: str, origin: str) -> tuple[int, int]:
    """(start, end) of target span1 or span2; a span whose text is not at its index is skipped."""
    if not isinstance(target, dict):
        raise UserError(f"{origin}: \"target\" must be an object with span1_text, span1_index, ...")
    span, index = target.get(f"span{number}_text"), target.get(f"span{number}_index")
    if not isinstance(span, str) or type(index) is not int:
        raise UserError(f"{origin}: target needs span{number}_text (string) and span{number}_index (integer)")
    if index < 0 or text[index:index + len(span)] != span:
        raise SkipRecord("span_text_mismatch")
    return index, index + len(span)


DATASETS = {
    "cola": DatasetSpec("tsv", "sentence", None, "label", BINARY,
                        columns=("source", "label", "original_label", "sentence")),
    "sst2": DatasetSpec("tsv", "sentence", None, "label", BINARY),
    "mrpc": DatasetSpec("tsv", "#1 String", "#2 String", "Quality", BINARY),
    "stsb": DatasetSpec("tsv", "sentence1", "sentence2", "score", None),
    "qqp": DatasetSpec("tsv", "question1", "question2", "is_duplicate", BINARY),
    "mnli": DatasetSpec("tsv", "sentence1", "sentence2", "gold_label", NLI),
    "qnli": DatasetSpec("tsv", "question", "sentence", "label", ENTAILMENT),
    "rte": DatasetSpec("tsv", "sentence1", "sentence2", "label", ENTAILMENT),
    "wnli": DatasetSpec("tsv", "sentence1", "sentence2", "label", BINARY),
    "chnsenticorp": DatasetSpec("tsv", "text_a", None, "label", BINARY),
    "tnews": DatasetSpec("jsonl", "sentence", None, "label", TNEWS),
    "iflytek": DatasetSpec("jsonl", "sentence", None, "label", IFLYTEK),
    "afqmc": DatasetSpec("jsonl", "sentence1", "sentence2", "label", BINARY),
    "cmnli": DatasetSpec("jsonl", "sentence1", "sentence2", "label", NLI, skip_labels=("-",)),
    "ocnli": DatasetSpec("jsonl", "sentence1", "sentence2", "label", NLI, skip_labels=("-",)),
    "csl": DatasetSpec("jsonl", "keyword", "abst", "label", BINARY, texts=_csl_texts),
    "cluewsc2020": DatasetSpec("jsonl", "text", None, "label", ("true", "false"), texts=_wsc_texts),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The layout of a named dataset; an unknown name is a UserError listing the known ones."""
    if name not in DATASETS:
        raise UserError(f"--dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def read_classification_file(path: str | os.PathLike[str], dataset: str,
                             skipped: Counter | None = None) -> list[ClassificationExample]:
    """Examples of one dataset file, in file order; unusable rows are counted in `skipped` by reason."""
    spec = dataset_spec(dataset)
    skipped = Counter() if skipped is None else skipped
    records = _tsv_records(path, spec) if spec.file_format == "tsv" else _json_records(path)
    examples = []
    for origin, record in records:
        try:
            examples.append(_example(record, spec, origin))
        except SkipRecord as skip:
            skipped[skip.reason] += 1
    return examples


def _tsv_records(path: str | os.PathLike[str], spec: DatasetSpec) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows as {column: value}: by header, or by the fixed columns of a headerless file (CoLA train/dev)."""
    rows = read_tsv(path)
    first = next(rows, None)
    if first is None:
        return
    header = first[1]
    if spec.columns is not None and spec.text_a not in header:
        header = list(spec.columns)
        rows = iter([first, *rows])
    if spec.text_a not in header:
        raise UserError(f"{path}: line {first[0]}: header has no {spec.text_a!r} column "
                        f"(has {', '.join(header)}); is this the right file for the dataset?")
    for number, fields in rows:
        yield f"{path}: line {number}", (dict(zip(header, fields)) if len(fields) >= len(header) else {})


def _json_records(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """JSON-lines objects; a line holding anything else is a UserError naming it."""
    for number, record in iter_json_lines(path):
        if not isinstance(record, dict):
            raise UserError(f"{path}: line {number}: expected a JSON object, found {type(record).__name__}")
        yield f"{path}: line {number}", record


def _example(record: dict[str, Any], spec: DatasetSpec, origin: str) -> ClassificationExample:
    """One example from a record: its texts and normalized label; skips what cannot be used."""
    if spec.texts is not None:
        text_a, text_b = spec.texts(record, origin)
    else:
        if spec.text_a not in record or (spec.text_b is not None and spec.text_b not in record):
            raise SkipRecord("missing_fields")
        text_a = _text(record[spec.text_a], spec.text_a, origin)
        text_b = None if spec.text_b is None else _text(record[spec.text_b], spec.text_b, origin)
    return ClassificationExample(text_a, text_b, _label(record.get(spec.label), spec, origin), origin)


def _text(value: object, name: str, origin: str) -> str:
    """A text field, checked to be a string."""
    if not isinstance(value, str):
        raise UserError(f"{origin}: field {name!r} is a {type(value).__name__}; expected a string")
    return value


def _label(value: object, spec: DatasetSpec, origin: str) -> str | float | None:
    """The record's label as a string (JSON numbers and booleans written as text), a float for regression,
    or None when absent."""
    if value is None or value == "":
        return None
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text in spec.skip_labels:
        raise SkipRecord("no_gold_label")
    if spec.labels is not None:
        return text
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{origin}: score {text!r} is not a number; expected a float target") from None


def build_classification_features(examples: Sequence[ClassificationExample], tokenizer: Tokenizer,
                                  options: ClassificationOptions, label2id: dict[str, int]) -> FeatureSet:
    """Columns input_ids, input_mask, segment_ids (N, L), label_ids (N,: int32, float32 for regression),
    example_index (N,)."""
    regression = dataset_spec(options.dataset).labels is None
    layout = special_layout(tokenizer)
    is_pair = any(example.text_b is not None for example in examples)
    built = FeatureSet(columns={})
    parts: list[dict[str, np.ndarray]] = []
    with tqdm(total=len(examples), desc=f"{options.dataset} features", unit="example", disable=None) as bar:
        for batch in chunks(examples):
            pairs = [example.text_b or "" for example in batch] if is_pair else None
            columns, truncated = encode_texts(tokenizer, layout, [example.text_a for example in batch], pairs,
                                              options.max_seq_length)
            columns["label_ids"] = np.array([_label_id(example, label2id, regression) for example in batch],
                                            dtype=np.float32 if regression else np.int32)
            parts.append(columns)
            built.handled.update(truncated_examples=int(truncated.sum()),
                                 unlabeled_examples=sum(example.label is None for example in batch))
            bar.update(len(batch))
    empty = {**pack([], options.max_seq_length, tokenizer.pad_token_id),
             "label_ids": np.zeros(0, dtype=np.float32 if regression else np.int32)}
    built.columns = {**concat_columns(parts, empty), "example_index": np.arange(len(examples), dtype=np.int32)}
    built.counts["examples"] = len(examples)
    return built


def _label_id(example: ClassificationExample, label2id: dict[str, int], regression: bool) -> float | int:
    """The example's target: its float (regression), its label's id, or -1 without a label."""
    if example.label is None:
        return IGNORE_LABEL
    return example.label if regression else label_id(label2id, str(example.label), example.origin)


def create_classification_data(input_path: str, model_dir: str, output: str, options: ClassificationOptions,
                               split: str = "train", overwrite: bool = False,
                               label_file: str | Sequence[str] | None = None) -> dict:
    """Read one dataset file, build features with the model's tokenizer and write them with a manifest."""
    started = time.monotonic()
    options.check()
    check_split(split)
    spec = dataset_spec(options.dataset)
    skipped: Counter = Counter()
    examples = read_classification_file(input_path, options.dataset, skipped)
    check_labelled(split, (example.origin for example in examples if example.label is None))
    regression = spec.labels is None
    labels, source = ([], "regression (no labels)") if regression else resolve_labels(split, label_file, spec.labels)
    tokenizer = load_tokenizer(model_dir, options.do_lower_case)
    built = build_classification_features(examples, tokenizer, options,
                                          {label: index for index, label in enumerate(labels)})
    built.skipped.update(skipped)
    return write_features(output, built, task="classification", dataset=options.dataset, split=split,
                          options=options, labels=labels, label_source=source, input_path=input_path,
                          tokenizer=tokenizer, model_dir=model_dir, overwrite=overwrite, started=started,
                          extra={"regression": regression})
