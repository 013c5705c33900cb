"""Pretraining instances from documents: NSP / SOP / FULL-SENTENCES segments, statically masked or not.

Documents arrive in chunks; each chunk is tokenized and turned into instances with its own random
generator seeded from (random_seed, chunk index), so the output does not depend on how many worker
processes share the chunks. The algorithms follow Google's create_pretraining_data.py (BERT),
ALBERT's SOP variant, RoBERTa's FULL-SENTENCES packing and ERNIE's Chinese whole-word segmentation.
"""
import itertools
import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from src.data.pretraining.masking import MaskingSpec, mask_batch
from src.data.tokenization import Tokenizer, load_tokenizer
from src.errors import UserError

OBJECTIVES = ("nsp", "sop", "none")
MASKINGS = ("static", "dynamic")
_WORD_CONTINUATION = {"wordpiece": lambda token: token.startswith("##"),
                      "bpe": lambda token: not token.startswith("Ġ"),
                      "sentencepiece": lambda token: not token.startswith("▁")}


@dataclass(frozen=True)
class PretrainOptions:
    """What shapes the instances (recorded in the manifest; same options + seed give the same output)."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 10
    random_seed: int = 12345
    objective: str = "nsp"
    masking: str = "static"
    whole_word_mask: bool = False
    chinese_wwm: bool = False
    chunk_documents: int = 1000

    def check(self) -> None:
        """Reject option values that cannot make instances, naming the option."""
        if self.objective not in OBJECTIVES:
            raise UserError(f"--objective {self.objective!r}: expected one of {', '.join(OBJECTIVES)}")
        if self.masking not in MASKINGS:
            raise UserError(f"--masking {self.masking!r}: expected one of {', '.join(MASKINGS)}")
        if self.max_seq_length < 5:
            raise UserError(f"--max_seq_length {self.max_seq_length}: expected at least 5 ([CLS] A [SEP] B [SEP])")
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise UserError(f"--masked_lm_prob {self.masked_lm_prob}: expected a value between 0 and 1")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise UserError(f"--short_seq_prob {self.short_seq_prob}: expected a value between 0 and 1")
        for name in ("max_predictions_per_seq", "dupe_factor", "chunk_documents"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name} {getattr(self, name)}: expected a positive integer")


@dataclass
class Segments:
    """Token ids of a piece of text with, per token, whether it starts a word (for whole-word masking)."""

    ids: list[int] = field(default_factory=list)
    starts: list[bool] = field(default_factory=list)

    def extend(self, other: "Segments") -> None:
        """Append another piece."""
        self.ids.extend(other.ids)
        self.starts.extend(other.starts)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class ChunkResult:
    """One chunk's instances as column arrays, plus its counts and skipped records by reason."""

    index: int
    columns: dict[str, np.ndarray]
    counts: Counter
    skipped: Counter


def continuation_ids(tokenizer: Tokenizer) -> np.ndarray:
    """Per token id: whether the piece continues a word (WordPiece '##x', BPE without 'Ġ', spm without '▁')."""
    continues = _WORD_CONTINUATION[tokenizer.kind]
    vocab = tokenizer.backend.get_vocab(with_added_tokens=True)
    continuation = np.zeros(tokenizer.vocab_size, dtype=bool)
    continuation[[i for token, i in vocab.items() if continues(token)]] = True
    return continuation


def truncate_pair(first: Segments, second: Segments, max_tokens: int, rng: np.random.Generator) -> bool:
    """The BERT paper's truncation: trim the longer segment one token at a time, randomly front or back."""
    excess = len(first.ids) + len(second.ids) - max_tokens
    if excess <= 0:
        return False
    lengths = [len(first.ids), len(second.ids)]
    cuts = [[0, 0], [0, 0]]
    for from_front in (rng.random(excess) < 0.5).tolist():
        side = 0 if lengths[0] > lengths[1] else 1
        lengths[side] -= 1
        cuts[side][0 if from_front else 1] += 1
    for segment, (front, back) in zip((first, second), cuts):
        stop = len(segment.ids) - back
        segment.ids, segment.starts = segment.ids[front:stop], segment.starts[front:stop]
    return True


class InstanceBuilder:
    """Turns chunks of raw documents into instance columns: tokenize, segment, (statically) mask."""

    def __init__(self, tokenizer: Tokenizer, options: PretrainOptions) -> None:
        self.tokenizer = tokenizer
        self.options = options
        self.spec = MaskingSpec.from_tokenizer(tokenizer, options.masked_lm_prob, options.max_predictions_per_seq)
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
        self._jieba = _load_jieba() if options.chinese_wwm else None
        self._word_units = options.whole_word_mask or options.chinese_wwm  # else each token is its own word
        self._continuation = continuation_ids(tokenizer)

    def build(self, index: int, documents: list[list[str]]) -> ChunkResult:
        """All instances of one chunk (dupe_factor passes, shuffled, masked if static)."""
        rng = np.random.default_rng([self.options.random_seed, index])
        counts, skipped = Counter(), Counter()
        tokenized = self._tokenize(documents, counts, skipped)
        instances: list[tuple[Segments, Segments, int]] = []
        for _ in range(self.options.dupe_factor):
            if self.options.objective == "none":
                instances.extend(self._full_sentences(tokenized, counts))
            else:
                for doc_index in range(len(tokenized)):
                    instances.extend(self._pairs(tokenized, doc_index, rng, counts, skipped))
        order = rng.permutation(len(instances))
        columns = self._columns([instances[i] for i in order], rng, counts)
        counts["instances"] += len(instances)
        return ChunkResult(index, columns, counts, skipped)

    def _tokenize(self, documents: list[list[str]], counts: Counter, skipped: Counter) -> list[list[Segments]]:
        """Tokenize every sentence of the chunk in one batch call; empty sentences are counted and dropped."""
        sentences = [sentence for document in documents for sentence in document]
        backend = self.tokenizer.backend
        # only Chinese WWM needs character offsets; without them tokenizers' fast path is ~2x quicker
        encode = backend.encode_batch if self._jieba is not None else backend.encode_batch_fast
        encodings = encode(sentences, add_special_tokens=False)
        tokenized, position = [], 0
        for document in documents:
            segments = []
            for sentence, encoding in zip(document, encodings[position:position + len(document)]):
                ids = encoding.ids
                if ids:
                    segments.append(Segments(ids, self._starts(sentence, encoding) if self._word_units else []))
                    counts["tokens"] += len(ids)
                else:
                    skipped["empty_sentence"] += 1
            position += len(document)
            counts["documents"] += 1
            counts["sentences"] += len(segments)
            if segments:
                tokenized.append(segments)
            else:
                skipped["empty_document"] += 1
        return tokenized

    def _starts(self, sentence: str, encoding: object) -> list[bool]:
        """Per token, whether it begins a word: the vocabulary's piece marks, or jieba's words for Chinese WWM
        (without whole-word masking every token is its own word and no list is kept)."""
        if self._jieba is not None:
            tokens = encoding.tokens
            word_of_char = np.zeros(len(sentence) + 1, dtype=np.int64)
            edges = np.cumsum([len(word) for word in self._jieba.lcut(sentence)])
            word_of_char[edges[edges < len(word_of_char)]] = 1
            word_of_char = np.cumsum(word_of_char)
            words = [word_of_char[start] for start, _ in encoding.offsets]
            return [i == 0 or (words[i] != words[i - 1] and not tokens[i].startswith("##"))
                    for i in range(len(tokens))]
        starts = ~self._continuation[encoding.ids]
        starts[0] = True
        return starts.tolist()

    def _pairs(self, docs: list[list[Segments]], doc_index: int, rng: np.random.Generator, counts: Counter,
               skipped: Counter) -> list[tuple[Segments, Segments, int]]:
        """BERT's create_instances_from_document: A/B pairs for NSP (random B half the time) or SOP (swapped).

        Unlike BERT, a chunk holds two sentences or more unless it ends the document, and a lone
        sentence is never forced to a random next (BERT's rule makes NSP labels about 2/3 random).
        """
        document = docs[doc_index]
        max_tokens = self.options.max_seq_length - 3
        target = max_tokens if rng.random() >= self.options.short_seq_prob else int(rng.integers(2, max_tokens + 1))
        if self.options.objective == "sop" and len(document) < 2:
            skipped["single_sentence_document"] += 1
            return []
        instances, chunk, length, i = [], [], 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            last = i == len(document) - 1
            if last or (length >= target and len(chunk) >= 2):
                pair, unused = self._pair_from(chunk, docs, doc_index, target, rng, skipped)
                i -= unused
                if pair is not None:
                    counts["truncated_instances"] += truncate_pair(pair[0], pair[1], max_tokens, rng)
                    instances.append(pair)
                chunk, length = [], 0
            i += 1
        return instances

    def _pair_from(self, chunk: list[Segments], docs: list[list[Segments]], doc_index: int, target: int,
                   rng: np.random.Generator, skipped: Counter) -> tuple[tuple[Segments, Segments, int] | None, int]:
        """Split an accumulated chunk into A and B; returns the pair (or None) and how many sentences to put back."""
        a_end = int(rng.integers(1, len(chunk))) if len(chunk) >= 2 else 1
        first, second = _joined(chunk[:a_end]), _joined(chunk[a_end:])
        if self.options.objective == "sop":
            if not len(second):
                skipped["single_segment_chunk"] += 1
                return None, 0
            return ((second, first, 1) if rng.random() < 0.5 else (first, second, 0)), 0
        if rng.random() >= 0.5:
            if not len(second):
                skipped["single_sentence_chunk"] += 1
                return None, 0
            return (first, second, 0), 0
        if len(docs) < 2:
            skipped["no_other_document_for_random_next"] += 1
            return ((first, second, 0), 0) if len(second) else (None, 0)
        other = int(rng.integers(0, len(docs) - 1))
        other += other >= doc_index
        return (first, _random_segment(docs[other], target - len(first), rng), 1), len(chunk) - a_end

    def _full_sentences(self, docs: list[list[Segments]], counts: Counter) -> list[tuple[Segments, Segments, int]]:
        """RoBERTa's FULL-SENTENCES: pack whole sentences across documents (a [SEP] between documents)."""
        max_tokens = self.options.max_seq_length - 2
        packs, pack = [], Segments()
        boundary = Segments([self.sep_id], [True])
        for document in docs:
            if len(pack):
                if len(pack) + 1 > max_tokens:
                    packs.append(pack)
                    pack = Segments()
                else:
                    pack.extend(boundary)
            for sentence in document:
                if len(sentence) > max_tokens:
                    sentence = Segments(sentence.ids[:max_tokens], sentence.starts[:max_tokens])
                    counts["truncated_sentences"] += 1
                if len(pack) + len(sentence) > max_tokens:
                    packs.append(pack)
                    pack = Segments()
                pack.extend(sentence)
        if len(pack):
            packs.append(pack)
        return [(p, Segments(), 0) for p in packs]

    def _columns(self, instances: list[tuple[Segments, Segments, int]], rng: np.random.Generator,
                 counts: Counter) -> dict[str, np.ndarray]:
        """Lay out [CLS] A [SEP] B [SEP], pad, and mask (static) or keep word starts (dynamic)."""
        length, cls, sep = self.options.max_seq_length, [self.cls_id], [self.sep_id]
        rows = [cls + first.ids + sep + (second.ids + sep if len(second.ids) else []) for first, second, _ in instances]
        used = np.array([len(row) for row in rows], dtype=np.int64).reshape(-1, 1)
        mask = np.arange(length) < used
        ids = np.full(mask.shape, self.pad_id, dtype=np.int32)
        ids[mask] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int32, count=int(used.sum()))
        starts = np.ones(mask.shape, dtype=np.int32)
        if self._word_units:
            row_starts = [[True] + first.starts + [True] + (second.starts + [True] if len(second.ids) else [])
                          for first, second, _ in instances]
            starts[mask] = np.fromiter(itertools.chain.from_iterable(row_starts), dtype=bool,
                                       count=int(used.sum()))
        first_end = np.array([len(first.ids) + 2 for first, _, _ in instances], dtype=np.int64).reshape(-1, 1)
        segment_ids = (mask & (np.arange(length) >= first_end)).astype(np.int32)
        labels = np.array([label for _, _, label in instances], dtype=np.int32).reshape(-1, 1)
        mask = mask.astype(np.int32)
        counts["instance_tokens"] += int(mask.sum())
        columns = {"input_ids": ids, "input_mask": mask, "segment_ids": segment_ids, "next_sentence_labels": labels}
        if self.options.masking == "dynamic":
            return {**columns, "word_starts": starts}
        return {**columns, **self._mask_all(ids, starts, rng, counts)}

    def _mask_all(self, ids: np.ndarray, starts: np.ndarray, rng: np.random.Generator,
                  counts: Counter) -> dict[str, np.ndarray]:
        """Static masking of every row; input_ids are masked in place."""
        ids[:], positions, labels, weights = mask_batch(ids, starts, self.spec, rng)
        counts["masked_tokens"] += int(weights.sum())
        return {"masked_lm_positions": positions, "masked_lm_ids": labels, "masked_lm_weights": weights}


def load_builder(model_dir: str, options: PretrainOptions, do_lower_case: bool | None = None) -> InstanceBuilder:
    """Load the tokenizer of model_dir and check it has what pretraining needs."""
    options.check()
    return InstanceBuilder(load_tokenizer(model_dir, do_lower_case), options)


def _joined(pieces: list[Segments]) -> Segments:
    """Concatenate sentences into one segment (each sentence's first token already starts a word)."""
    joined = Segments()
    for piece in pieces:
        joined.extend(piece)
    return joined


def _random_segment(document: list[Segments], target: int, rng: np.random.Generator) -> Segments:
    """Sentences of another document from a random start, until about `target` tokens (BERT's random next)."""
    start = int(rng.integers(0, len(document)))
    segment = Segments()
    for sentence in document[start:]:
        segment.extend(sentence)
        if len(segment.ids) >= target:
            break
    return segment


def _load_jieba() -> object:
    """jieba, quiet (it logs its dictionary loading) and initialised once per process."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba
