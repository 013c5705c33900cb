"""NER data: CoNLL-2003 column files, CLUENER2020 JSON lines and MSRA / People's Daily character files -> features.

Tags may come in IOB1, BIO (IOB2) or BIOES; entities are chunked the way conlleval and seqeval chunk them,
then written in the target scheme. A word's label sits on its first sub-token; its other sub-tokens, the
special tokens and padding get -1 (ignored by the loss and by scoring). A word the tokenizer turns into
nothing (a zero-width space, a lone control character) becomes the unknown token, so every word keeps a
position. Sentences longer than max_seq_length are truncated, not split into windows: the words whose first
sub-token does not fit are counted, and the `tags` column keeps every word's gold tag so word-level scoring
can count them as missed. Unlabeled sentences (a test split) get -2 at first sub-tokens: still the word
positions (label_ids != -1), but no gold label.
"""
import os
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from src.data.tasks.features import (IGNORE_LABEL, FeatureSet, Layout, SkipRecord, check_budget, check_labelled,
                               check_split, chunks, concat_columns, label_id, pack, read_lines, resolve_labels,
                               special_layout, write_features)
from src.data.json_files import iter_json_lines
from src.data.tokenization import Tokenizer, load_tokenizer
from src.errors import UserError
from src.metrics.ner import get_entities

SCHEMES = {"iob1": "BI", "bio": "BI", "bioes": "BIES"}
SCHEME_ALIASES = {"iob2": "bio", "iobes": "bioes"}
FORMATS = ("auto", "conll", "cluener", "char")
NO_GOLD = -2
_FIELDS = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class NerOptions:
    """How NER features are made (recorded in the manifest)."""

    max_seq_length: int = 128
    format: str = "auto"
    input_scheme: str = "auto"
    tag_scheme: str = "bio"
    do_lower_case: bool | None = None

    def check(self) -> None:
        """Reject option values that cannot make features, naming the option."""
        if self.format not in FORMATS:
            raise UserError(f"--format {self.format!r}: expected one of {', '.join(FORMATS)}")
        _option_scheme("--input_scheme", self.input_scheme, allow_auto=True)
        _option_scheme("--tag_scheme", self.tag_scheme)
        if self.max_seq_length < 3:
            raise UserError(f"--max_seq_length {self.max_seq_length}: expected at least 3")


@dataclass(frozen=True)
class NerExample:
    """One sentence: its words, their tags (None when unlabeled) and where it was read ('file: line N');
    in CoNLL files, document counts the -DOCSTART- lines before it."""

    words: list[str]
    tags: list[str] | None
    origin: str
    document: int = 0


def scheme_name(name: str, allow_auto: bool = False) -> str:
    """Canonical scheme name (iob1, bio, bioes; iob2 and iobes are aliases; 'auto' if allowed)."""
    name = SCHEME_ALIASES.get(name.lower(), name.lower())
    if name in SCHEMES or (allow_auto and name == "auto"):
        return name
    expected = ", ".join([*SCHEMES, *SCHEME_ALIASES] + (["auto"] if allow_auto else []))
    raise ValueError(f"tag scheme {name!r} is not one of {expected}")


def _option_scheme(option: str, name: str, allow_auto: bool = False) -> None:
    """Check a scheme option: a bad name is a UserError naming the option."""
    try:
        scheme_name(name, allow_auto)
    except ValueError as err:
        raise UserError(f"{option}: {err}") from None


def split_tag(tag: str) -> tuple[str, str]:
    """(prefix, entity type) of a tag: ('O', '') or one of B/I/E/S and a non-empty type."""
    if tag == "O":
        return "O", ""
    prefix, dash, kind = tag.partition("-")
    if not dash or len(prefix) != 1 or prefix not in "BIES" or not kind:
        raise ValueError(f"tag {tag!r} is not O or B-/I-/E-/S- followed by an entity type")
    return prefix, kind


def _render(entities: list[tuple[str, int, int]], length: int, scheme: str) -> list[str]:
    """Tags of the given entities in a scheme (IOB1 uses B- only where an entity follows one of its type)."""
    tags = ["O"] * length
    previous: tuple[str, int] | None = None
    for kind, first, last in entities:
        inside = ["I"] * (last - first + 1)
        if scheme == "bioes" and first == last:
            inside[0] = "S"
        elif scheme == "bioes":
            inside[0], inside[-1] = "B", "E"
        elif scheme == "bio" or previous == (kind, first - 1):
            inside[0] = "B"
        tags[first:last + 1] = [f"{prefix}-{kind}" for prefix in inside]
        previous = (kind, last)
    return tags


def convert_tags(tags: Sequence[str], source_scheme: str, target_scheme: str) -> list[str]:
    """Rewrite a tag sequence from one scheme to another (source 'auto' takes any); keeps the entities."""
    source, target = scheme_name(source_scheme, allow_auto=True), scheme_name(target_scheme)
    parsed = [split_tag(tag) for tag in tags]
    if source != "auto":
        bad = next((tag for tag, (prefix, _) in zip(tags, parsed) if prefix not in SCHEMES[source] + "O"), None)
        if bad is not None:
            raise ValueError(f"tag {bad!r} is not a {source} tag (prefixes {', '.join(SCHEMES[source])})")
    return _render(get_entities(tags), len(tags), target)


def ner_label_list(examples: Sequence[NerExample], tag_scheme: str) -> list[str]:
    """Labels for the entity types the examples have: O, then each type's prefixes in the scheme (types sorted)."""
    kinds = {tag.partition("-")[2] for example in examples for tag in example.tags or () if tag != "O"}
    prefixes = SCHEMES[scheme_name(tag_scheme)]
    return ["O"] + [f"{prefix}-{kind}" for kind in sorted(kinds) for prefix in prefixes]


def detect_format(path: str | os.PathLike[str]) -> str:
    """cluener for .json/.jsonl files or a first line starting with '{', else conll (word ... tag columns)."""
    if Path(path).suffix.lower() in (".json", ".jsonl"):
        return "cluener"
    first = next((line for _, line in read_lines(path) if line.strip()), "")
    return "cluener" if first.lstrip().startswith("{") else "conll"


def read_ner_file(path: str | os.PathLike[str], fmt: str = "auto",
                  skipped: Counter | None = None) -> tuple[list[NerExample], str]:
    """Sentences of a NER file in the given (or detected) format, and the format used."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "cluener":
        return read_cluener(path, Counter() if skipped is None else skipped), fmt
    return read_columns(path, max_columns=2 if fmt == "char" else None), fmt


def conll_blocks(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[tuple[int, list[str]]]]]:
    """(document, block): blank-line-separated blocks of (line number, fields), each with the number of
    -DOCSTART- lines before it; those lines end a block and are dropped."""
    block: list[tuple[int, list[str]]] = []
    document = 0
    for number, line in read_lines(path):
        text = line.strip(" \t")
        if line.strip() and not text.startswith("-DOCSTART-"):
            block.append((number, _FIELDS.split(text)))
            continue
        if block:
            yield document, block
        block = []
        document += text.startswith("-DOCSTART-")
    if block:
        yield document, block


def read_columns(path: str | os.PathLike[str], max_columns: int | None = None) -> list[NerExample]:
    """CoNLL-style files: one word per line, word first and tag last (space or tab), blank line between sentences.

    A file whose lines hold only words is unlabeled. max_columns=2 is the character-per-line layout of
    MSRA / People's Daily (character, tag).
    """
    examples, tagged = [], None
    for document, block in conll_blocks(path):
        for number, fields in block:
            tagged = len(fields) > 1 if tagged is None else tagged
            if (len(fields) > 1) != tagged or (max_columns and len(fields) > max_columns):
                layout = "a character and its tag" if max_columns else "a word, optional middle columns, a tag"
                expected = layout if tagged else "only a word (earlier lines have no tag)"
                raise UserError(f"{path}: line {number}: {len(fields)} columns; expected {expected} "
                                "separated by spaces or tabs")
        words = [fields[0] for _, fields in block]
        tags = [fields[-1] for _, fields in block] if tagged else None
        examples.append(NerExample(words, tags, f"{path}: line {block[0][0]}", document))
    return examples


def read_cluener(path: str | os.PathLike[str], skipped: Counter) -> list[NerExample]:
    """CLUENER2020 JSON lines: one word per character, BIO tags from the entity spans (test lines have no label)."""
    examples = []
    for number, record in iter_json_lines(path):
        origin = f"{path}: line {number}"
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise UserError(f"{origin}: expected an object with a \"text\" string (CLUENER2020 format)")
        text, label = record["text"], record.get("label")
        try:
            tags = None if label is None else cluener_tags(text, label, origin)
        except SkipRecord as skip:
            skipped[skip.reason] += 1
            continue
        examples.append(NerExample(list(text), tags, origin))
    return examples


def cluener_tags(text: str, label: object, origin: str) -> list[str]:
    """Per-character BIO tags from {"type": {"entity text": [[start, end_inclusive], ...]}}."""
    if not isinstance(label, dict):
        raise UserError(f"{origin}: \"label\" is a {type(label).__name__}; expected "
                        "{\"type\": {\"entity text\": [[start, end], ...]}}")
    tags = ["O"] * len(text)
    for kind, mentions in label.items():
        if not isinstance(mentions, dict):
            raise UserError(f"{origin}: label {kind!r}: expected {{\"entity text\": [[start, end], ...]}}")
        for mention, spans in mentions.items():
            for start, end in _spans(spans, origin, kind):
                if not 0 <= start <= end < len(text) or text[start:end + 1] != mention:
                    raise SkipRecord("entity_span_mismatch")
                if any(tag != "O" for tag in tags[start:end + 1]):
                    raise SkipRecord("overlapping_entities")
                tags[start:end + 1] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start)
    return tags


def _spans(spans: object, origin: str, kind: str) -> list[tuple[int, int]]:
    """A CLUENER span list, checked to be [[start, end], ...] of integers."""
    if not isinstance(spans, list) or not all(
            isinstance(span, list) and len(span) == 2 and all(type(value) is int for value in span) for span in spans):
        raise UserError(f"{origin}: label {kind!r}: spans must be [[start, end], ...] integer pairs")
    return [(span[0], span[1]) for span in spans]


def build_ner_features(examples: Sequence[NerExample], tokenizer: Tokenizer, options: NerOptions,
                       label2id: dict[str, int]) -> FeatureSet:
    """Columns input_ids, input_mask, segment_ids, label_ids (N, L), word_count, example_index (N,), tags (N,)."""
    layout = special_layout(tokenizer)
    budget = check_budget(options.max_seq_length, layout, is_pair=False)
    built = FeatureSet(columns={})
    parts = []
    with tqdm(total=len(examples), desc="ner features", unit="sentence", disable=None) as bar:
        for batch in chunks(range(len(examples))):
            parts.append(_chunk_columns(examples, batch, tokenizer, layout, budget, options, label2id, built))
            bar.update(len(batch))
    length = options.max_seq_length
    empty = {**pack([], length, 0), "label_ids": np.zeros((0, length), dtype=np.int32),
             "word_count": np.zeros(0, dtype=np.int32), "example_index": np.zeros(0, dtype=np.int32),
             "tags": np.zeros(0, dtype=str)}
    built.columns = concat_columns(parts, empty)
    return built


def _chunk_columns(examples: Sequence[NerExample], batch: range, tokenizer: Tokenizer, layout: Layout, budget: int,
                   options: NerOptions, label2id: dict[str, int], built: FeatureSet) -> dict[str, np.ndarray]:
    """Features of one chunk of sentences (counted into `built`)."""
    rows, labels, word_counts, indexes, gold = [], [], [], [], []
    for index, pieces in zip(batch, _word_pieces([examples[i] for i in batch], tokenizer, built.handled)):
        example = examples[index]
        built.counts.update(sentences=1, words=len(example.words))
        if not example.words:
            built.skipped["empty_sentence"] += 1
            continue
        tags = _target_tags(example, options)
        if tags is None:
            built.handled["unlabeled_sentences"] += 1
        row, label_row, kept = _sentence(pieces, _tag_ids(example, tags, label2id), layout, budget,
                                         options.max_seq_length)
        _count_truncation(built.handled, len(example.words) - kept)
        rows.append(row)
        labels.append(label_row)
        word_counts.append(kept)
        indexes.append(index)
        gold.append(" ".join(tags or ()))
    return {**pack(rows, options.max_seq_length, tokenizer.pad_token_id),
            "label_ids": np.array(labels, dtype=np.int32).reshape(len(rows), options.max_seq_length),
            "word_count": np.array(word_counts, dtype=np.int32), "example_index": np.array(indexes, dtype=np.int32),
            "tags": np.array(gold, dtype=str)}


def _word_pieces(batch: list[NerExample], tokenizer: Tokenizer, handled: Counter) -> list[list[list[int]]]:
    """Token ids per word; byte-level BPE words get a leading space, as in running text (add_prefix_space)."""
    space = " " if tokenizer.kind == "bpe" else ""
    encodings = tokenizer.backend.encode_batch([[space + word for word in example.words] for example in batch],
                                               is_pretokenized=True, add_special_tokens=False)
    result = []
    for example, encoding in zip(batch, encodings):
        pieces: list[list[int]] = [[] for _ in example.words]
        for token, word in zip(encoding.ids, encoding.word_ids):
            if word is not None:
                pieces[word].append(token)
        empty = [index for index, piece in enumerate(pieces) if not piece]
        for index in empty:
            pieces[index] = [tokenizer.unk_token_id]
        if empty:
            handled["words_without_tokens_as_unk"] += len(empty)
        result.append(pieces)
    return result


def _target_tags(example: NerExample, options: NerOptions) -> list[str] | None:
    """The example's tags in the target scheme; a bad tag is a UserError naming the sentence."""
    if example.tags is None:
        return None
    try:
        return convert_tags(example.tags, options.input_scheme, options.tag_scheme)
    except ValueError as err:
        raise UserError(f"{example.origin}: {err}") from None


def _tag_ids(example: NerExample, tags: list[str] | None, label2id: dict[str, int]) -> list[int]:
    """Label id per word, or NO_GOLD for an unlabeled sentence."""
    if tags is None:
        return [NO_GOLD] * len(example.words)
    return [label_id(label2id, tag, f"{example.origin} (word {index + 1}, {example.words[index]!r})")
            for index, tag in enumerate(tags)]


def _sentence(pieces: list[list[int]], word_labels: list[int], layout: Layout, budget: int,
              max_seq_length: int) -> tuple[tuple[list[int], list[int]], list[int], int]:
    """Assembled (ids, type ids), per-position labels (first sub-tokens only), and how many words fit."""
    starts, tokens = [], []
    for piece in pieces:
        starts.append(len(tokens))
        tokens.extend(piece)
    kept = sum(1 for start in starts if start < budget)
    label_row = [IGNORE_LABEL] * max_seq_length
    offset = layout.first_offset()
    for start, label in zip(starts[:kept], word_labels):
        label_row[offset + start] = label
    return layout.assemble(tokens[:budget]), label_row, kept


def _count_truncation(handled: Counter, lost: int) -> None:
    """Count a sentence cut at max_seq_length and the words it lost."""
    if lost:
        handled["truncated_sentences"] += 1
        handled["words_beyond_max_seq_length"] += lost


def create_ner_data(input_path: str, model_dir: str, output: str, options: NerOptions, split: str = "train",
                    overwrite: bool = False, label_file: str | Sequence[str] | None = None) -> dict:
    """Read a NER file, build features with the model's tokenizer and write them with a manifest."""
    started = time.monotonic()
    options.check()
    check_split(split)
    skipped: Counter = Counter()
    examples, fmt = read_ner_file(input_path, options.format, skipped)
    check_labelled(split, (example.origin for example in examples if example.tags is None))
    train_labels = ner_label_list(examples, options.tag_scheme) if split == "train" else None
    labels, source = resolve_labels(split, label_file, train_labels=train_labels)
    tokenizer = load_tokenizer(model_dir, options.do_lower_case)
    built = build_ner_features(examples, tokenizer, options, {label: index for index, label in enumerate(labels)})
    built.skipped.update(skipped)
    return write_features(output, built, task="ner", dataset=fmt, split=split, options=options, labels=labels,
                          label_source=source, input_path=input_path, tokenizer=tokenizer, model_dir=model_dir,
                          overwrite=overwrite, started=started,
                          extra={"tag_scheme": scheme_name(options.tag_scheme), "no_gold_label_id": NO_GOLD})
