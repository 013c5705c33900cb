"""LUKE's entity inputs beside the word ids, built exactly as transformers' LukeTokenizer builds them.

A text with entity spans is cut at every span boundary (moved before a space that precedes it, so the
space stays with the next word, as byte-level BPE writes it) and each piece is tokenized on its own: a
span's tokens are then exactly the tokens of its pieces, even where a boundary falls inside a word or a
CJK run. Word truncation is transformers' Python longest_first; an entity whose tokens are cut away is
dropped and counted, then entities beyond max_entity_length are dropped (longest_first over the two
texts' entity lists) and counted. Positions are raw word indices (0 = <s>), padded with -1 to
max_mention_length; entity_token_type_ids are 0 for both texts, as transformers writes them.
The tasks mark their spans in the words as transformers' task modes do: entity_classification puts <ent>
around its one span, entity_pair_classification <ent> around the head and <ent2> around the tail.
"""
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import tokenizers

from src.data.entities.vocab import EntityVocab
from src.errors import UserError

ENT, ENT2 = "<ent>", "<ent2>"
TASKS = ("entity_classification", "entity_pair_classification", "entity_span_classification")
Span = tuple[int, int]


@dataclass(frozen=True)
class EntityEncoding:
    """LUKE's entity inputs of one encoded input, and how many entities did not fit."""

    entity_ids: list[int]
    entity_position_ids: list[list[int]]
    entity_attention_mask: list[int]
    entity_token_type_ids: list[int]
    cut_by_truncation: int = 0
    over_max_entity_length: int = 0


@dataclass
class Segment:
    """One text's tokens (no special tokens) with char offsets, its entities' token spans and ids."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    tokens: list[str]
    spans: list[Span]
    entity_ids: list[int]

    def truncate(self, length: int) -> None:
        """Keep the first `length` tokens."""
        del self.ids[length:], self.offsets[length:], self.tokens[length:]

    def insert(self, index: int, token_id: int, token: str, offset: int) -> None:
        """Insert a marker token (zero-width offset) before token `index`."""
        self.ids.insert(index, token_id)
        self.tokens.insert(index, token)
        self.offsets.insert(index, (offset, offset))


class EntityEncoder:
    """Words and entities of a text (or pair) for LUKE, over a byte-level BPE backend and an entity vocabulary."""

    def __init__(self, backend: tokenizers.Tokenizer, entity_vocab: EntityVocab, specials: dict[str, int],
                 max_entity_length: int, max_mention_length: int) -> None:
        self.backend = backend
        self.entity_vocab = entity_vocab
        self.specials = specials  # token ids of cls, sep, pad, <ent>, <ent2>
        self.max_entity_length = max_entity_length
        self.max_mention_length = max_mention_length

    def segment(self, text: str, spans: Sequence[Span] | None, entities: Sequence[str] | None = None,
                language: str | None = None) -> Segment:
        """Tokenize a text cut at its spans; entity ids from titles ([UNK] if unknown) or [MASK] without titles."""
        spans = [] if spans is None else [_checked_span(span, text) for span in spans]
        if entities is not None and len(entities) != len(spans):
            raise UserError(f"{len(entities)} entities for {len(spans)} entity spans; expected one title per span")
        segment = Segment([], [], [], [], [])
        token_at: dict[int, int] = {}
        cursor = 0
        for boundary in sorted(set(itertools.chain(*spans))):
            cut = boundary - 1 if boundary > 0 and text[boundary - 1] == " " else boundary
            if cut != cursor:
                self._append(segment, text, cursor, cut)
                cursor = cut
            token_at[boundary] = len(segment.ids)
        self._append(segment, text, cursor, len(text))
        segment.spans = [(token_at[start], token_at[end]) for start, end in spans]
        segment.entity_ids = ([self.entity_vocab.mask_id] * len(spans) if entities is None
                              else [self.entity_vocab.id(title, language) for title in entities])
        return segment

    def mark(self, segment: Segment, task: str, char_spans: Sequence[Span]) -> Segment:
        """Put transformers' task markers around the spans and set the task's entities ([MASK], [MASK2])."""
        vocab = self.entity_vocab
        if task == "entity_span_classification":
            segment.entity_ids = [vocab.mask_id] * len(segment.spans)
            return segment
        expected = 1 if task == "entity_classification" else 2
        if len(segment.spans) != expected:
            raise UserError(f"{task} takes {expected} entity span(s); got {len(segment.spans)}")
        markers = [(ENT, self.specials[ENT]), (ENT2, self.specials[ENT2])][:expected]
        # later spans first, so earlier indices stay put; on equal starts the head first, as transformers does
        order = sorted(range(expected), key=lambda index: segment.spans[index][0], reverse=True)
        spans = list(segment.spans)
        for index in order:
            start, end = spans[index]
            token, token_id = markers[index]
            segment.insert(end, token_id, token, char_spans[index][1])
            segment.insert(start, token_id, token, char_spans[index][0])
        for rank, index in enumerate(reversed(order)):
            segment.spans[index] = (spans[index][0] + 2 * rank, spans[index][1] + 2 * rank + 2)
        segment.entity_ids = [vocab.mask_id, vocab.mask2_id][:expected]
        return segment

    def encode(self, first: Segment, second: Segment | None, max_length: int | None, padding: bool,
               max_entity_length: int | None = None,
               max_mention_length: int | None = None) -> tuple[dict[str, list], EntityEncoding]:
        """Truncate, add <s> A </s></s> B </s>, place the entities; returns the word fields and the entities."""
        specials = 2 if second is None else 4
        if max_length is not None:
            if max_length < specials:
                raise UserError(f"max_length {max_length} is too small: the special tokens alone take {specials}")
            keep_first, keep_second = python_longest_first(len(first.ids), None if second is None
                                                           else len(second.ids), max_length - specials)
            first.truncate(keep_first)
            if second is not None:
                second.truncate(keep_second)
        words = self._words(first, second, max_length if padding else None)
        entities = self._entities(first, second, padding, max_entity_length or self.max_entity_length,
                                  max_mention_length or self.max_mention_length)
        return words, entities

    def no_entities(self, padding: bool, max_entity_length: int | None = None,
                    max_mention_length: int | None = None) -> EntityEncoding:
        """The entity inputs of a text without entities: all padding (or nothing when not padding)."""
        return self._padded([], [], padding, max_entity_length or self.max_entity_length,
                            max_mention_length or self.max_mention_length, 0, 0)

    def _append(self, segment: Segment, text: str, start: int, end: int) -> None:
        """Tokenize text[start:end] on its own and append its tokens, offsets moved into the whole text."""
        encoding = self.backend.encode(text[start:end], add_special_tokens=False)
        segment.ids += encoding.ids
        segment.tokens += encoding.tokens
        segment.offsets += [(begin + start, finish + start) for begin, finish in encoding.offsets]

    def _words(self, first: Segment, second: Segment | None, pad_to: int | None) -> dict[str, list]:
        """The word fields of Encoding: <s> A </s> (</s> B </s>), type ids 0, padded to pad_to."""
        cls, sep = self.specials["cls"], self.specials["sep"]
        ids = [cls] + first.ids + [sep]
        sequence_ids: list[int | None] = [None] + [0] * len(first.ids) + [None]
        offsets = [(0, 0)] + first.offsets + [(0, 0)]
        tokens = [self.backend.id_to_token(cls)] + first.tokens + [self.backend.id_to_token(sep)]
        if second is not None:
            ids += [sep] + second.ids + [sep]
            sequence_ids += [None] + [1] * len(second.ids) + [None]
            offsets += [(0, 0)] + second.offsets + [(0, 0)]
            tokens += [tokens[-1]] + second.tokens + [tokens[-1]]
        special = [int(sequence is None) for sequence in sequence_ids]
        mask = [1] * len(ids)
        missing = max(0, (pad_to or 0) - len(ids))
        pad = self.specials["pad"]
        return {"ids": ids + [pad] * missing, "type_ids": [0] * (len(ids) + missing),
                "attention_mask": mask + [0] * missing, "offsets": offsets + [(0, 0)] * missing,
                "tokens": tokens + [self.backend.id_to_token(pad)] * missing,
                "special_tokens_mask": special + [1] * missing, "sequence_ids": sequence_ids + [None] * missing}

    def _entities(self, first: Segment, second: Segment | None, padding: bool, max_entities: int,
                  max_mention: int) -> EntityEncoding:
        """Entities whose tokens survived truncation, capped at max_entities, with their word positions."""
        kept = [[(entity, span) for entity, span in zip(part.entity_ids, part.spans) if span[1] <= len(part.ids)]
                for part in (first, second) if part is not None]
        cut = sum(len(part.spans) for part in (first, second) if part is not None) - sum(map(len, kept))
        total = sum(map(len, kept))
        if total > max_entities:
            keep = python_longest_first(len(kept[0]), len(kept[1]) if len(kept) > 1 else None, max_entities)
            kept = [entities[:count] for entities, count in zip(kept, keep)]
        offsets = [1, len(first.ids) + 3]
        entity_ids, positions = [], []
        for entities, offset in zip(kept, offsets):
            for entity, (start, end) in entities:
                entity_ids.append(entity)
                mention = list(range(start + offset, end + offset))[:max_mention]
                positions.append(mention + [-1] * (max_mention - len(mention)))
        return self._padded(entity_ids, positions, padding, max_entities, max_mention, cut,
                            total - len(entity_ids))

    def _padded(self, entity_ids: list[int], positions: list[list[int]], padding: bool, max_entities: int,
                max_mention: int, cut: int, over: int) -> EntityEncoding:
        """Pad entities to max_entities with [PAD] (mask 0, positions -1) when padding."""
        missing = max_entities - len(entity_ids) if padding else 0
        return EntityEncoding(
            entity_ids=entity_ids + [self.entity_vocab.pad_id] * missing,
            entity_position_ids=positions + [[-1] * max_mention for _ in range(missing)],
            entity_attention_mask=[1] * len(entity_ids) + [0] * missing,
            entity_token_type_ids=[0] * (len(entity_ids) + missing),
            cut_by_truncation=cut, over_max_entity_length=over)


def python_longest_first(first: int, second: int | None, budget: int) -> tuple[int, int]:
    """Kept lengths under transformers' Python longest_first (its LukeTokenizer truncates with it; on ties the
    second text loses the extra token, unlike the `tokenizers` rule of features.longest_first)."""
    if second is None:
        return min(first, budget), 0
    remove = first + second - budget
    if remove <= 0:
        return first, second
    unequal = min(abs(second - first), remove)
    even = remove - unequal
    if first > second:
        return first - unequal - even // 2, second - (even - even // 2)
    return first - even // 2, second - unequal - (even - even // 2)


def _checked_span(span: object, text: str) -> Span:
    """A (start, end) character span inside the text, as a tuple of ints."""
    if (not isinstance(span, (tuple, list)) or len(span) != 2 or not all(type(v) is int for v in span)
            or not 0 <= span[0] < span[1] <= len(text)):
        raise UserError(f"entity span {span!r}: expected (start, end) character offsets with "
                        f"0 <= start < end <= {len(text)} (the text's length)")
    return span[0], span[1]
