"""SQuAD features: the question plus doc_stride windows of the context, assembled with numpy.

Questions and contexts (each distinct context once: SQuAD asks ~5 questions per paragraph) are
tokenized without special tokens in one batched call of the fast backend; that gives exactly the
tokens a pair encoding gives. Every window is then gathered from one flat token pool by index
arithmetic, around the special tokens of the tokenizer's own pair template ([CLS] Q [SEP] C [SEP] for
BERT/ALBERT, <s> Q </s></s> C </s> for RoBERTa). doc_stride is the step between window starts, as in
the BERT seed (HF run_qa's `stride` is the overlap instead).
"""
import itertools
import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import tokenizers
from tqdm import tqdm

from src.data.tasks.squad import SquadExample, SquadOptions
from src.data.tasks.squad_entities import ENTITY_COLUMNS, SquadEntities, WindowLayout, pad_entity_columns
from src.data.tokenization import Tokenizer

UNIQUE_ID_BASE = 1_000_000_000
CHUNK_EXAMPLES = 2000
TRAIN_COLUMNS = ("input_ids", "input_mask", "segment_ids", "start_positions", "end_positions")
EVAL_COLUMNS = ("input_ids", "input_mask", "segment_ids", "unique_ids", "example_index", "token_offsets")
_LAST_SPACE = 0x3000  # the highest code point str.isspace() accepts
_IS_SPACE = np.array([chr(code).isspace() for code in range(_LAST_SPACE + 1)])


@dataclass
class SquadFeatures:
    """Model inputs (N x max_seq_length int32), training targets or evaluation bookkeeping, and notable counts.

    token_offsets[f, t] is the [start, end) character span in the example's context of context token t
    (whitespace trimmed), and -1, -1 for question, special and padding tokens.
    """

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    start_positions: np.ndarray | None = None
    end_positions: np.ndarray | None = None
    unique_ids: np.ndarray | None = None
    example_index: np.ndarray | None = None
    token_offsets: np.ndarray | None = None
    entity_ids: np.ndarray | None = None
    entity_position_ids: np.ndarray | None = None
    entity_segment_ids: np.ndarray | None = None
    entity_attention_mask: np.ndarray | None = None
    counts: Counter = field(default_factory=Counter)
    entity_counts: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.input_ids)

    def columns(self) -> dict[str, np.ndarray]:
        """The numeric columns this split has (train or eval), by name."""
        return {item.name: getattr(self, item.name) for item in fields(self)
                if isinstance(getattr(self, item.name), np.ndarray)}


@dataclass(frozen=True)
class PairTemplate:
    """The special tokens a tokenizer puts before, between and after a (question, context) pair."""

    prefix: list[tuple[int, int]]
    middle: list[tuple[int, int]]
    suffix: list[tuple[int, int]]
    question_type: int
    context_type: int

    @property
    def special_count(self) -> int:
        """How many special tokens a pair gets."""
        return len(self.prefix) + len(self.middle) + len(self.suffix)


def pair_template(tokenizer: Tokenizer) -> PairTemplate:
    """Read the pair template (special ids and type ids) off one encoding of a dummy pair."""
    backend = tokenizer.backend
    backend.no_truncation()
    backend.no_padding()
    encoding = backend.encode("a", "b")
    sequence = encoding.sequence_ids
    question = [i for i, which in enumerate(sequence) if which == 0]
    context = [i for i, which in enumerate(sequence) if which == 1]
    pieces = list(zip(encoding.ids, encoding.type_ids))
    return PairTemplate(prefix=pieces[:question[0]], middle=pieces[question[-1] + 1:context[0]],
                        suffix=pieces[context[-1] + 1:], question_type=encoding.type_ids[question[0]],
                        context_type=encoding.type_ids[context[0]])


def build_squad_features(examples: Sequence[SquadExample], tokenizer: Tokenizer, options: SquadOptions,
                         is_training: bool, progress: bool = False, entities: SquadEntities | None = None,
                         workers: int = 1) -> SquadFeatures:
    """Tokenize and window the examples into features; training targets or evaluation offsets by is_training;
    LUKE's entity columns too, given `entities` (a linker over a mention DB). Chunks of CHUNK_EXAMPLES
    examples are built in `workers` processes and joined in order: the same features for any number.

    Training skips an answerable example with no usable answer (`no_usable_answer`) or whose answer
    covers no token (`answer_not_tokenized`); a window without the answer, and every window of an
    unanswerable question, points start and end at 0 ([CLS]/<s>) (`window_without_answer` counts the
    former). Evaluation keeps every example. Notable: `question_truncated` (cut to max_query_length),
    `answer_partial_token` (the answer starts or ends inside a token, so its token span is wider).
    """
    template = pair_template(tokenizer)
    options.check(template.special_count)
    counts, entity_counts = Counter(), Counter()
    parts = []
    setup = _ChunkSetup(tokenizer, template, options, is_training, entities)
    chunks = [(first, examples[first:first + CHUNK_EXAMPLES]) for first in range(0, len(examples), CHUNK_EXAMPLES)]
    with tqdm(total=len(examples), unit="examples", desc="squad features", disable=None if progress else True) as bar:
        for built, chunk_counts, chunk_entity_counts, size in _chunk_results(setup, chunks, workers):
            parts.append(built)
            counts.update(chunk_counts)
            entity_counts.update(chunk_entity_counts)
            bar.update(size)
    columns = TRAIN_COLUMNS if is_training else EVAL_COLUMNS
    if entities is not None and parts:
        columns, parts = columns + ENTITY_COLUMNS, pad_entity_columns(parts, entities.pad_id)
    joined = {name: np.concatenate([part[name] for part in parts]) if parts else _empty(name, options)
              for name in columns if name != "unique_ids"}
    if not is_training:
        joined["unique_ids"] = np.arange(len(joined["input_ids"]), dtype=np.int32) + UNIQUE_ID_BASE
    return SquadFeatures(**joined, counts=+counts, entity_counts=entity_counts)


@dataclass(frozen=True)
class _ChunkSetup:
    """What building a chunk needs besides its examples (sent once to each worker process)."""

    tokenizer: Tokenizer
    template: PairTemplate
    options: SquadOptions
    is_training: bool
    entities: SquadEntities | None


def _chunk_results(setup: _ChunkSetup, chunks: list[tuple[int, Sequence[SquadExample]]],
                   workers: int) -> Iterator[tuple[dict[str, np.ndarray], Counter, Counter, int]]:
    """Each chunk's columns and counts, in chunk order: here, or in a spawn pool of `workers` processes."""
    if workers == 1:
        yield from (_counted_chunk(setup, first, chunk) for first, chunk in chunks)
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(setup,)) as pool:
        yield from pool.imap(_chunk_in_worker, chunks)


def _counted_chunk(setup: _ChunkSetup, first: int,
                   chunk: Sequence[SquadExample]) -> tuple[dict[str, np.ndarray], Counter, Counter, int]:
    """One chunk's columns, its feature counts and entity counts, and its size."""
    counts, entity_counts = Counter(), Counter()
    built = _build_chunk(chunk, first, setup.tokenizer, setup.template, setup.options, setup.is_training, counts,
                         setup.entities, entity_counts)
    return built, counts, entity_counts, len(chunk)


_WORKER_SETUP: list[_ChunkSetup] = []


def _init_worker(setup: _ChunkSetup) -> None:
    """Worker process start: Ctrl-C left to the parent, one tokenizer thread, the setup kept."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["RAYON_NUM_THREADS"] = "1"
    _WORKER_SETUP.append(setup)


def _chunk_in_worker(item: tuple[int, Sequence[SquadExample]]) -> tuple[dict[str, np.ndarray], Counter, Counter, int]:
    """Build one (first index, examples) chunk in a worker process."""
    return _counted_chunk(_WORKER_SETUP[0], *item)


def eval_columns(features: SquadFeatures, examples: Sequence[SquadExample]) -> dict[str, np.ndarray]:
    """Evaluation columns plus per-feature `example_id` and `context` strings: all postprocessing needs."""
    ids = np.array([example.id for example in examples] or [""])
    contexts = np.array([example.context for example in examples] or [""])
    return {**features.columns(), "example_id": ids[features.example_index],
            "context": contexts[features.example_index]}


def _empty(name: str, options: SquadOptions) -> np.ndarray:
    """A zero-row column of the right trailing shape."""
    shape = {"token_offsets": (0, options.max_seq_length, 2), "start_positions": (0,), "end_positions": (0,),
             "example_index": (0,)}.get(name, (0, options.max_seq_length))
    return np.zeros(shape, dtype=np.int32)


@dataclass
class _Tokens:
    """Token ids of many texts laid end to end, with each text's length and first index (and offsets)."""

    ids: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray
    offsets: np.ndarray | None = None


def _tokenize(backend: tokenizers.Tokenizer, texts: list[str], with_offsets: bool) -> _Tokens:
    """One batched encode without special tokens, flattened straight into numpy.

    Without offsets it uses encode_batch_fast, which skips the offsets and runs on every core
    (encode_batch, which tracks character offsets, runs on one here).
    """
    backend.no_truncation()
    backend.no_padding()
    encode = backend.encode_batch if with_offsets else backend.encode_batch_fast
    encodings = encode(texts, add_special_tokens=False)
    lengths = np.fromiter((len(encoding) for encoding in encodings), np.int64, count=len(encodings))
    total = int(lengths.sum())
    ids = np.fromiter(itertools.chain.from_iterable(encoding.ids for encoding in encodings), np.int32, count=total)
    tokens = _Tokens(ids, lengths, np.cumsum(lengths) - lengths)
    if with_offsets:
        flat = itertools.chain.from_iterable(itertools.chain.from_iterable(encoding.offsets for encoding in encodings))
        tokens.offsets = np.fromiter(flat, np.int64, count=2 * total).reshape(total, 2)
    return tokens


def _trim_offsets(texts: list[str], tokens: _Tokens) -> np.ndarray:
    """Token offsets moved past leading/trailing whitespace (BPE's 'Ġ', a full-width space), as global char indexes.

    A whitespace-only token becomes empty at its end. The offsets are into the texts joined end to
    end (subtract a text's `_char_bases` entry for offsets into that text). Few tokens have any
    whitespace, so each pass only looks at those that still do.
    """
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    spans = tokens.offsets + np.repeat(_char_bases(texts), tokens.lengths)[:, None]
    start, end = spans[:, 0], spans[:, 1]
    moving = np.flatnonzero(start < end)
    while len(moving):
        moving = moving[_is_space(codes[start[moving]])]
        start[moving] += 1
        moving = moving[start[moving] < end[moving]]
    moving = np.flatnonzero(start < end)
    while len(moving):
        moving = moving[_is_space(codes[end[moving] - 1])]
        end[moving] -= 1
        moving = moving[start[moving] < end[moving]]
    return spans


def _is_space(codes: np.ndarray) -> np.ndarray:
    """Whether each code point is whitespace (str.isspace)."""
    return (codes <= _LAST_SPACE) & _IS_SPACE[np.minimum(codes, _LAST_SPACE)]


def _char_bases(texts: list[str]) -> np.ndarray:
    """Where each text starts in the texts joined end to end."""
    lengths = np.fromiter((len(text) for text in texts), np.int64, count=len(texts))
    return np.cumsum(lengths) - lengths


def _build_chunk(examples: Sequence[SquadExample], first: int, tokenizer: Tokenizer, template: PairTemplate,
                 options: SquadOptions, is_training: bool, counts: Counter, entities: SquadEntities | None,
                 entity_counts: Counter) -> dict[str, np.ndarray]:
    """Features of one chunk of examples (first = the chunk's index in the whole list)."""
    if is_training:
        examples = [example for example in examples if example.is_impossible or _usable(example, counts)]
    code_of: dict[str, int] = {}
    codes = np.array([code_of.setdefault(example.context, len(code_of)) for example in examples], dtype=np.int64)
    contexts = list(code_of)
    question_texts = [example.question for example in examples]
    questions = _tokenize(tokenizer.backend, question_texts, with_offsets=entities is not None)
    context_tokens = _tokenize(tokenizer.backend, contexts, with_offsets=True)
    spans = _trim_offsets(contexts, context_tokens)
    counts["question_truncated"] += int((questions.lengths > options.max_query_length).sum())
    local = spans - np.repeat(_char_bases(contexts), context_tokens.lengths)[:, None]
    if not is_training:
        windows = _Windows(questions, context_tokens, codes, template, options)
        built = windows.gather(tokenizer.pad_token_id, local)
        built["example_index"] = (first + windows.example).astype(np.int32)
        kept = np.arange(len(examples))
    else:
        answers = _answer_tokens(examples, codes, contexts, context_tokens, spans, counts)
        usable = answers[:, 0] >= -1
        windows = _Windows(_select(questions, usable), context_tokens, codes[usable], template, options)
        built = windows.gather(tokenizer.pad_token_id)
        built.update(windows.targets(answers[usable], counts))
        kept = np.flatnonzero(usable)
    if entities is not None:
        question_spans = _split(_trim_offsets(question_texts, questions)
                                - np.repeat(_char_bases(question_texts), questions.lengths)[:, None], questions)
        layout = WindowLayout(windows.example, windows.window_start, windows.window_length, windows.question_length,
                              len(template.prefix), windows.context_column, template.question_type,
                              template.context_type)
        built.update(entities.columns([examples[i].title for i in kept], [question_texts[i] for i in kept],
                                      [question_spans[i] for i in kept], contexts, _split(local, context_tokens),
                                      codes[kept], layout, entity_counts))
    return built


def _split(spans: np.ndarray, tokens: _Tokens) -> list[np.ndarray]:
    """Per text, its rows of a flat per-token array."""
    return [spans[start:start + length] for start, length in zip(tokens.starts.tolist(), tokens.lengths.tolist())]


def _usable(example: SquadExample, counts: Counter) -> bool:
    """Whether an answerable example has an answer to train on (counted when not)."""
    if example.training_answer() is None:
        counts["no_usable_answer"] += 1
        return False
    return True


def _select(tokens: _Tokens, keep: np.ndarray) -> _Tokens:
    """The same flat ids, restricted to the kept texts (their start indexes still point into the pool)."""
    return _Tokens(tokens.ids, tokens.lengths[keep], tokens.starts[keep])


def _answer_tokens(examples: list[SquadExample], codes: np.ndarray, contexts: list[str], tokens: _Tokens,
                   spans: np.ndarray, counts: Counter) -> np.ndarray:
    """(first, last) context-token index of each training answer; -1, -1 if unanswerable; -2, -2 if no token.

    The first token is the first whose end is past the answer's start; the last, the last whose start is
    before the answer's end (offsets never decrease, so both are binary searches over all tokens at once).
    """
    chars = np.array([(-1, -1) if example.is_impossible else example.training_answer() for example in examples],
                     dtype=np.int64).reshape(-1, 2)
    answerable = chars[:, 0] >= 0
    wanted = chars + _char_bases(contexts)[codes][:, None]
    starts, lengths = tokens.starts[codes], tokens.lengths[codes]
    first = np.searchsorted(np.ascontiguousarray(spans[:, 1]), wanted[:, 0], side="right")
    last = np.searchsorted(np.ascontiguousarray(spans[:, 0]), wanted[:, 1], side="left") - 1
    found = answerable & (starts <= first) & (first <= last) & (last < starts + lengths)
    counts["answer_not_tokenized"] += int((answerable & ~found).sum())
    covered = np.stack([spans[first[found], 0], spans[last[found], 1]], axis=1)
    counts["answer_partial_token"] += int((covered != wanted[found]).any(axis=1).sum())
    local = np.stack([first - starts, last - starts], axis=1)
    return np.where(found[:, None], local, np.where(answerable[:, None], -2, -1))


class _Windows:
    """The doc_stride windows of every example, and the pool-index arithmetic that fills their rows."""

    def __init__(self, questions: _Tokens, contexts: _Tokens, codes: np.ndarray, template: PairTemplate,
                 options: SquadOptions) -> None:
        self.template, self.length = template, options.max_seq_length
        question_lengths = np.minimum(questions.lengths, options.max_query_length)
        context_lengths = contexts.lengths[codes]
        room = options.max_seq_length - question_lengths - template.special_count
        count = np.where(context_lengths <= room, 1, -(-(context_lengths - room) // options.doc_stride) + 1)
        self.example = np.repeat(np.arange(len(codes)), count)
        self.window_start = (np.arange(len(self.example)) - np.repeat(np.cumsum(count) - count, count)) \
            * options.doc_stride
        self.window_length = np.minimum(room[self.example], context_lengths[self.example] - self.window_start)
        self.question_length = question_lengths[self.example]
        self.questions, self.contexts, self.codes = questions, contexts, codes
        self.context_column = len(template.prefix) + self.question_length + len(template.middle)

    def gather(self, pad_id: int, context_offsets: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """input_ids, input_mask, segment_ids (and token_offsets, given the context tokens') for every window."""
        template, rows = self.template, len(self.example)
        specials = template.prefix + template.middle + template.suffix
        n_prefix, n_middle, n_suffix = len(template.prefix), len(template.middle), len(template.suffix)
        question_base = len(specials)
        context_base = question_base + len(self.questions.ids)
        lengths = np.stack([np.full(rows, n_prefix), self.question_length, np.full(rows, n_middle),
                            self.window_length, np.full(rows, n_suffix)], axis=1)
        starts = np.stack([np.zeros(rows, dtype=np.int64),
                           question_base + self.questions.starts[self.example],
                           np.full(rows, n_prefix),
                           context_base + self.contexts.starts[self.codes[self.example]] + self.window_start,
                           np.full(rows, n_prefix + n_middle)], axis=1)
        pool, row, column = _flat_indexes(lengths, starts)
        ids = np.concatenate([np.array([token for token, _ in specials], dtype=np.int32), self.questions.ids,
                              self.contexts.ids])
        types = np.concatenate([np.array([kind for _, kind in specials], dtype=np.int32),
                                np.full(len(self.questions.ids), template.question_type, dtype=np.int32),
                                np.full(len(self.contexts.ids), template.context_type, dtype=np.int32)])
        built = {"input_ids": np.full((rows, self.length), pad_id, dtype=np.int32),
                 "segment_ids": np.zeros((rows, self.length), dtype=np.int32)}
        built["input_ids"][row, column] = ids[pool]
        built["segment_ids"][row, column] = types[pool]
        built["input_mask"] = (np.arange(self.length) < lengths.sum(axis=1)[:, None]).astype(np.int32)
        if context_offsets is not None:
            offsets = np.concatenate([np.full((context_base, 2), -1), context_offsets]).astype(np.int32)
            built["token_offsets"] = np.full((rows, self.length, 2), -1, dtype=np.int32)
            built["token_offsets"][row, column] = offsets[pool]
        return built

    def targets(self, answers: np.ndarray, counts: Counter) -> dict[str, np.ndarray]:
        """start/end_positions: the answer's columns in windows holding all of it, else 0."""
        first, last = answers[self.example, 0], answers[self.example, 1]
        answerable = first >= 0
        inside = answerable & (first >= self.window_start) & (last < self.window_start + self.window_length)
        counts["window_without_answer"] += int((answerable & ~inside).sum())
        shift = self.context_column - self.window_start
        return {"start_positions": np.where(inside, first + shift, 0).astype(np.int32),
                "end_positions": np.where(inside, last + shift, 0).astype(np.int32)}


def _flat_indexes(lengths: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows made of segments (lengths, pool starts), the pool index, row and column of every filled cell."""
    flat_lengths = lengths.ravel()
    total = int(flat_lengths.sum())
    segment_first = np.cumsum(flat_lengths) - flat_lengths
    pool = np.repeat(starts.ravel() - segment_first, flat_lengths) + np.arange(total)
    row_lengths = lengths.sum(axis=1)
    row = np.repeat(np.arange(len(lengths)), row_lengths)
    column = np.arange(total) - np.repeat(np.cumsum(row_lengths) - row_lengths, row_lengths)
    return pool, row, column
