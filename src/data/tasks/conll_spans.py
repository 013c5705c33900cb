"""CoNLL-2003 as span classification, as the LUKE paper and repository do it -> LUKE features.

Input: a CoNLL column file (word first, tag last; IOB1, BIO or BIOES tags; -DOCSTART- lines separate
documents, blank lines sentences). Each word is written with a leading space (LUKE's add_prefix_space),
and every span of a sentence's words up to max_mention_length sub-words is a candidate: one [MASK] entity
labelled with its gold type or "O" (label id 0). With context "document" the neighbouring words of the
document fill the window around the sentence as LUKE's reader does (whole words here, where LUKE cuts
sub-words); "sentence" encodes the sentence alone. A sentence's candidates are split evenly over
ceil(candidates / max_entity_length) rows. Columns beside the word and entity ones: label_ids (N, E) (-1
for padding, and for every candidate of an unlabeled sentence), entity_spans (N, E, 2) word [start, end)
in the sentence (-1 padding), example_index and word_count (N,), tags (N,): the sentence's gold BIO tags,
so scoring counts gold entities that are no candidate (too long, cut by max_seq_length) as missed.
"""
import dataclasses
import itertools
import math
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from src.data.tasks.features import (FeatureSet, check_labelled, check_split, label_id, resolve_labels)
from src.data.tasks.ner import NerExample, convert_tags, read_columns
from src.data.tasks.entity_features import (EntityTaskOptions, entity_columns, luke_tokenizer, word_spans,
                                            write_entity_features)
from src.data.tokenization import Encoding, LukeTokenizer
from src.errors import UserError
from src.metrics.ner import get_entities

NON_ENTITY = "O"
TASK = "entity_span_classification"


def read_conll_documents(path: str) -> list[list[NerExample]]:
    """Documents (parted by -DOCSTART- lines) of the sentences of a CoNLL column file, tags as BIO."""
    return [[_bio(sentence) for sentence in group]
            for _, group in itertools.groupby(read_columns(path), key=lambda sentence: sentence.document)]


def _bio(sentence: NerExample) -> NerExample:
    """The sentence with BIO tags; a bad tag is a UserError naming its line."""
    if sentence.tags is None:
        return sentence
    try:
        return dataclasses.replace(sentence, tags=convert_tags(sentence.tags, "auto", "bio"))
    except ValueError as err:
        raise UserError(f"{sentence.origin}: {err}") from None


def span_labels(documents: Sequence[Sequence[NerExample]]) -> list[str]:
    """"O" then the entity types the documents have, sorted."""
    kinds = {kind for document in documents for sentence in document
             for kind, _, _ in get_entities(sentence.tags or [])}
    return [NON_ENTITY] + sorted(kinds)


class SpanRows:
    """The rows of one document's sentences: context window, candidates, their labels."""

    def __init__(self, document: Sequence[NerExample], tokenizer: LukeTokenizer, options: EntityTaskOptions) -> None:
        self.options = options
        self.words = [word for sentence in document for word in sentence.words]
        encodings = tokenizer.backend.encode_batch([" " + word for word in self.words], add_special_tokens=False)
        self.lengths = [len(encoding.ids) for encoding in encodings]
        self.prefix = np.cumsum([0] + self.lengths).tolist()  # sub-words before each word
        self.starts = np.cumsum([0] + [len(sentence.words) for sentence in document]).tolist()

    def subwords(self, begin: int, end: int) -> int:
        """Sub-words of words [begin, end)."""
        return self.prefix[end] - self.prefix[begin]

    def window(self, index: int) -> tuple[int, int]:
        """Word range [begin, end) of the document around sentence `index` (LUKE's context rule)."""
        first, last = self.starts[index], self.starts[index + 1]
        if self.options.context == "sentence":
            return first, last
        budget = self.options.max_seq_length - 2
        left, right = self.subwords(0, first), self.subwords(last, len(self.words))
        sentence = self.subwords(first, last)
        half = max(0, (budget - sentence) // 2)
        if left < right:
            left_room = min(left, half)
            right_room = min(right, budget - left_room - sentence)
        else:
            right_room = min(right, half)
            left_room = min(left, budget - right_room - sentence)
        begin, end = first, last
        while begin > 0 and self.subwords(begin - 1, first) <= left_room:
            begin -= 1
        while end < len(self.words) and self.subwords(last, end + 1) <= right_room:
            end += 1
        return begin, end

    def candidates(self, index: int, begin: int, handled: Counter) -> list[tuple[int, int]]:
        """Word spans [start, end) of sentence `index` (sentence word indices) of at most max_mention_length
        sub-words that end inside the window's max_seq_length."""
        first, last = self.starts[index], self.starts[index + 1]
        budget = self.options.max_seq_length - 2
        spans = []
        for start in range(first, last):
            for end in range(start + 1, last + 1):
                if self.subwords(start, end) > self.options.max_mention_length:
                    break
                if self.subwords(begin, end) > budget:
                    handled["candidates_beyond_max_seq_length"] += 1
                    continue
                spans.append((start - first, end - first))
        return spans


def _chunks(items: list, size: int) -> list[list]:
    """Split items evenly over ceil(len / size) parts, as LUKE's reader does."""
    if not items:
        return []
    parts = math.ceil(len(items) / size)
    step = math.ceil(len(items) / parts)
    return [items[start:start + step] for start in range(0, len(items), step)]


def build_span_features(documents: Sequence[Sequence[NerExample]], tokenizer: LukeTokenizer,
                        options: EntityTaskOptions, label2id: dict[str, int]) -> FeatureSet:
    """Columns: the word and entity columns, label_ids, entity_spans, example_index, word_count, tags."""
    built = FeatureSet(columns={})
    encodings, labels, spans, indexes = [], [], [], []
    sentences = [sentence for document in documents for sentence in document]
    number = 0  # the sentence's index in the file
    with tqdm(total=len(sentences), desc="conll span features", unit="sentence", disable=None) as bar:
        for document in documents:
            rows = SpanRows(document, tokenizer, options)
            for index, sentence in enumerate(document):
                for encoding, row_labels, row_spans in _sentence_rows(rows, index, sentence, tokenizer, label2id,
                                                                      built):
                    encodings.append(encoding)
                    labels.append(row_labels)
                    spans.append(row_spans)
                    indexes.append(number)
                number += 1
                bar.update(1)
    size = options.max_entity_length
    built.columns = {**entity_columns(encodings, options),
                     "label_ids": np.array(labels, dtype=np.int32).reshape(len(labels), size),
                     "entity_spans": np.array(spans, dtype=np.int32).reshape(len(spans), size, 2),
                     "example_index": np.array(indexes, dtype=np.int32),
                     "word_count": np.array([len(sentences[i].words) for i in indexes], dtype=np.int32),
                     "tags": np.array([" ".join(sentences[i].tags or ()) for i in indexes], dtype=str)}
    return built


def _sentence_rows(rows: SpanRows, index: int, sentence: NerExample, tokenizer: LukeTokenizer,
                   label2id: dict[str, int], built: FeatureSet) -> list[tuple[Encoding, list[int], list[list[int]]]]:
    """(encoding, labels, word spans) of each row of one sentence's candidates, padded to max_entity_length."""
    options, size = rows.options, rows.options.max_entity_length
    built.counts["sentences"] += 1
    begin, end = rows.window(index)
    text, chars = word_spans(rows.words[begin:end], leading_space=True)
    offset = rows.starts[index] - begin
    candidates = rows.candidates(index, begin, built.handled)
    entities = {(first, last + 1): kind for kind, first, last in get_entities(sentence.tags or [])}
    built.counts.update(candidate_spans=len(candidates), gold_entities=len(entities))
    built.handled["gold_entities_not_candidates"] += len(set(entities) - set(candidates))
    if not candidates:
        built.skipped["sentences_without_candidates"] += 1
    made = []
    for chunk in _chunks(candidates, size):
        char_spans = [(chars[start + offset][0], chars[stop + offset - 1][1]) for start, stop in chunk]
        encoding = options.encode(tokenizer, text, char_spans, TASK)
        if encoding.entities.cut_by_truncation:
            raise ValueError("candidate spans were filtered to fit the window, yet some were cut")
        row_labels = [-1 if sentence.tags is None else label_id(label2id, entities.get(span, NON_ENTITY),
                                                                sentence.origin) for span in chunk]
        made.append((encoding, row_labels + [-1] * (size - len(chunk)),
                     [list(span) for span in chunk] + [[-1, -1]] * (size - len(chunk))))
    return made


def create_conll_span_data(input_path: str, model_dir: str, output: str, options: EntityTaskOptions,
                           split: str = "train", overwrite: bool = False, label_file: str | None = None) -> dict:
    """Read a CoNLL file, build LUKE span features and write them with a manifest."""
    started = time.monotonic()
    options.check()
    check_split(split)
    documents = read_conll_documents(input_path)
    check_labelled(split, (s.origin for document in documents for s in document if s.tags is None))
    train_labels = span_labels(documents) if split == "train" else None
    labels, source = resolve_labels(split, label_file, train_labels=train_labels)
    if labels[0] != NON_ENTITY:
        raise UserError(f"{source}: the first span label must be {NON_ENTITY!r} (the non-entity class)")
    tokenizer = luke_tokenizer(model_dir, options.do_lower_case)
    built = build_span_features(documents, tokenizer, options, {label: i for i, label in enumerate(labels)})
    return write_entity_features(output, built, tokenizer=tokenizer, task="conll_spans", dataset="conll2003",
                                 split=split, options=options, labels=labels, label_source=source,
                                 input_path=input_path, model_dir=model_dir, overwrite=overwrite, started=started,
                                 extra={"non_entity_id": 0})
