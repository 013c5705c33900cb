"""LUKE pretraining instances: Wikipedia pages (a wikipedia2vec DumpDB) with their hyperlinks as entities.

As LUKE's own builder: per page, its paragraphs tokenized without special tokens; each link whose
title (through the dump's redirects) is in the entity vocabulary becomes an entity over the tokens
its characters cover; paragraphs of fewer than 5 tokens are skipped; consecutive paragraphs are
packed into `<s> ... </s>` rows of at most max_seq_length tokens (a longer paragraph is cut, the
links it cuts counted); rows without entities are skipped; at most max_entity_length entities a
row, mention positions cut to max_mention_length. Words are masked as BERT's (whole words, 80/10/10)
and entities as LUKE's: masked_entity_prob of each row's entities (at least one) become [MASK].
Packing differs from LUKE's in one way: it packs paragraphs where LUKE packs sentences.
"""
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from src.data.entities.dump_db import Paragraph
from src.data.entities.vocab import EntityVocab
from src.data.pretraining.instances import ChunkResult, continuation_ids
from src.data.pretraining.masking import MaskingSpec, mask_batch
from src.data.tokenization import Tokenizer
from src.errors import UserError

MIN_PARAGRAPH_TOKENS = 5  # LUKE's min_sentence_length
ENTITY_COLUMNS = ("entity_ids", "entity_position_ids", "entity_segment_ids", "entity_attention_mask")
MASKED_ENTITY_COLUMNS = ("masked_entity_positions", "masked_entity_ids", "masked_entity_weights")


@dataclass(frozen=True)
class LukeOptions:
    """What shapes LUKE's instances (recorded in the manifest; the same options and seed give the same rows)."""

    max_seq_length: int = 512
    max_entity_length: int = 128
    max_mention_length: int = 30
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 77
    masked_entity_prob: float = 0.15
    masking: str = "static"
    whole_word_mask: bool = True
    random_seed: int = 12345
    chunk_pages: int = 100

    def check(self) -> None:
        """Reject option values that cannot make instances, naming the option."""
        if self.masking not in ("static", "dynamic"):
            raise UserError(f"--masking {self.masking!r}: expected static or dynamic")
        if self.max_seq_length < MIN_PARAGRAPH_TOKENS + 2:
            raise UserError(f"--max_seq_length {self.max_seq_length}: expected at least {MIN_PARAGRAPH_TOKENS + 2}")
        for name in ("masked_lm_prob", "masked_entity_prob"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise UserError(f"--{name} {getattr(self, name)}: expected a value between 0 and 1")
        for name in ("max_entity_length", "max_mention_length", "max_predictions_per_seq", "chunk_pages"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name} {getattr(self, name)}: expected a positive integer")

    @property
    def max_entity_predictions(self) -> int:
        """Masked entities a row can have: LUKE's max(1, round(entities x masked_entity_prob)) at most."""
        return max(1, round(self.max_entity_length * self.masked_entity_prob))


@dataclass(frozen=True)
class EntityMaskingSpec:
    """What entity masking needs: the [MASK] entity, the share of entities masked, the room for labels."""

    mask_id: int
    masked_entity_prob: float
    max_predictions: int


def token_spans(offsets: np.ndarray, char_spans: np.ndarray) -> np.ndarray:
    """[first, stop) token indexes covering each [start, end) character span: the tokens whose characters
    overlap it (offsets: each token's [start, end) in the same text, in order); first >= stop: none."""
    first = np.searchsorted(offsets[:, 1], char_spans[:, 0], side="right")
    stop = np.searchsorted(offsets[:, 0], char_spans[:, 1], side="left")
    return np.stack([first, stop], axis=1)


def mask_entities(entity_ids: np.ndarray, attention: np.ndarray, spec: EntityMaskingSpec,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """LUKE's entity masking of rows: max(1, round(n x prob)) of each row's n entities, drawn at random,
    become [MASK]. Returns (masked ids, positions, original ids, weights), the last three padded to
    max_predictions (positions sorted)."""
    real = attention.astype(bool)
    count = real.sum(axis=1)
    budget = np.where(count > 0, np.minimum(np.maximum(1, np.rint(count * spec.masked_entity_prob)),
                                            spec.max_predictions), 0).astype(np.int64)
    keys = np.where(real, rng.random(real.shape), np.inf)
    order = np.argsort(keys, axis=1, kind="stable")[:, :spec.max_predictions]
    if order.shape[1] < spec.max_predictions:
        order = np.pad(order, [(0, 0), (0, spec.max_predictions - order.shape[1])])
    weights = np.arange(spec.max_predictions) < budget[:, None]
    positions = np.sort(np.where(weights, order, np.iinfo(np.int64).max), axis=1)
    positions = np.where(weights, positions, 0).astype(np.int32)
    labels = np.where(weights, np.take_along_axis(entity_ids, positions, axis=1), 0).astype(np.int32)
    masked = entity_ids.copy()
    rows = np.broadcast_to(np.arange(len(entity_ids))[:, None], positions.shape)
    masked[rows[weights], positions[weights]] = spec.mask_id
    return masked, positions, labels, weights.astype(np.float32)


def expand_positions(starts: np.ndarray, stops: np.ndarray, width: int) -> np.ndarray:
    """(rows, E) mention token [start, stop) -> (rows, E, width) positions, -1 past the mention (and for pads)."""
    columns = starts[..., None] + np.arange(width)
    return np.where(columns < stops[..., None], columns, -1).astype(np.int32)


class LukeInstanceBuilder:
    """Turns chunks of pages into LUKE rows: tokenize, link, pack, (statically) mask."""

    def __init__(self, tokenizer: Tokenizer, vocab: EntityVocab, options: LukeOptions, language: str) -> None:
        self.tokenizer, self.vocab, self.options, self.language = tokenizer, vocab, options, language
        self.spec = MaskingSpec.from_tokenizer(tokenizer, options.masked_lm_prob, options.max_predictions_per_seq)
        self.entity_spec = EntityMaskingSpec(vocab.mask_id, options.masked_entity_prob,
                                             options.max_entity_predictions)
        self._continuation = continuation_ids(tokenizer)

    def build(self, index: int, pages: list[tuple[str, list[Paragraph]]], resolve: dict[str, str]) -> ChunkResult:
        """All rows of one chunk of pages (resolve: link title -> redirect target, for the chunk's links)."""
        rng = np.random.default_rng([self.options.random_seed, index])
        counts, skipped = Counter(), Counter()
        rows: list[tuple[list[int], list[tuple[int, int, int]]]] = []
        for _, paragraphs in pages:
            counts["pages"] += 1
            pieces = self._paragraphs(paragraphs, resolve, counts, skipped)
            rows.extend(self._pack(pieces, counts, skipped))
        counts["instances"] += len(rows)
        return ChunkResult(index, self._columns(rows, rng, counts) if rows else {}, counts, skipped)

    def _paragraphs(self, paragraphs: list[Paragraph], resolve: dict[str, str], counts: Counter,
                    skipped: Counter) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
        """Each usable paragraph's token ids and (entity id, first, stop) mentions."""
        texts = [paragraph.text for paragraph in paragraphs]
        encodings = self.tokenizer.backend.encode_batch(texts, add_special_tokens=False) if texts else []
        pieces = []
        for paragraph, encoding in zip(paragraphs, encodings):
            if len(encoding.ids) < MIN_PARAGRAPH_TOKENS:
                skipped["short_paragraphs"] += 1
                continue
            links = []
            for link in paragraph.links:
                entity = self.vocab.get(resolve.get(link.title, link.title), self.language)
                counts["links"] += 1
                if entity is None or entity in (self.vocab.pad_id, self.vocab.unk_id, self.vocab.mask_id):
                    skipped["links_not_in_entity_vocab"] += 1
                else:
                    links.append((entity, link.start, link.end))
            spans = token_spans(np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2),
                                np.array([(s, e) for _, s, e in links], dtype=np.int64).reshape(-1, 2))
            mentions = [(entity, int(first), int(stop)) for (entity, _, _), (first, stop) in zip(links, spans)
                        if first < stop]
            skipped["links_covering_no_token"] += len(links) - len(mentions)
            counts["tokens"] += len(encoding.ids)
            pieces.append((encoding.ids, mentions))
        return pieces

    def _pack(self, pieces: list[tuple[list[int], list[tuple[int, int, int]]]], counts: Counter,
              skipped: Counter) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
        """Consecutive paragraphs packed into rows of at most max_seq_length - 2 tokens."""
        room = self.options.max_seq_length - 2
        rows, ids, mentions = [], [], []
        for piece_ids, piece_mentions in self._cut(pieces, room, counts):
            if ids and len(ids) + len(piece_ids) > room:
                rows.append((ids, mentions))
                ids, mentions = [], []
            mentions += [(entity, first + len(ids), stop + len(ids)) for entity, first, stop in piece_mentions]
            ids = ids + list(piece_ids)
        if ids:
            rows.append((ids, mentions))
        kept = [row for row in rows if row[1]]
        skipped["rows_without_entities"] += len(rows) - len(kept)
        return kept

    def _cut(self, pieces: list[tuple[list[int], list[tuple[int, int, int]]]], room: int,
             counts: Counter) -> list[tuple[list[int], list[tuple[int, int, int]]]]:
        """Paragraphs longer than a row cut into row-sized parts; mentions crossing a cut are counted and dropped."""
        out = []
        for ids, mentions in pieces:
            for start in range(0, len(ids), room):
                stop = min(start + room, len(ids))
                inside = [(e, f - start, s - start) for e, f, s in mentions if start <= f and s <= stop]
                counts["mentions_cut_by_row_split"] += sum(f < stop and s > start for _, f, s in mentions) \
                    - len(inside)
                out.append((ids[start:stop], inside))
        return out

    def _columns(self, rows: list[tuple[list[int], list[tuple[int, int, int]]]], rng: np.random.Generator,
                 counts: Counter) -> dict[str, np.ndarray]:
        """`<s> ids </s>` rows padded, entity columns, masked statically or with word starts kept."""
        options, tokenizer = self.options, self.tokenizer
        length, width = options.max_seq_length, options.max_entity_length
        ids = np.full((len(rows), length), tokenizer.pad_token_id, dtype=np.int32)
        entity_ids = np.full((len(rows), width), self.vocab.pad_id, dtype=np.int32)
        starts = np.zeros((len(rows), width), dtype=np.int32)
        stops = np.zeros((len(rows), width), dtype=np.int32)
        for row, (tokens, mentions) in enumerate(rows):
            ids[row, :len(tokens) + 2] = [tokenizer.cls_token_id, *tokens, tokenizer.sep_token_id]
            counts["entities_over_max_entity_length"] += max(0, len(mentions) - width)
            for slot, (entity, first, stop) in enumerate(mentions[:width]):
                entity_ids[row, slot], starts[row, slot] = entity, first + 1  # +1: <s>
                stops[row, slot] = min(stop, first + options.max_mention_length) + 1
                counts["mentions_cut_to_max_mention_length"] += stop - first > options.max_mention_length
        mask = (ids != tokenizer.pad_token_id).astype(np.int32)
        attention = (np.arange(width) < np.array([min(len(m), width) for _, m in rows])[:, None]).astype(np.int32)
        counts["entities"] += int(attention.sum())
        word_starts = ~self._continuation[ids] | (mask == 0)
        if not options.whole_word_mask:
            word_starts[:] = True
        columns = {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids),
                   "next_sentence_labels": np.zeros((len(rows), 1), dtype=np.int32),
                   "entity_ids": entity_ids, "entity_starts": starts, "entity_stops": stops,
                   "entity_attention_mask": attention}
        if options.masking == "dynamic":
            return {**columns, "word_starts": word_starts.astype(np.int32)}
        ids[:], positions, labels, weights = mask_batch(ids, word_starts, self.spec, rng)
        columns["entity_ids"], entity_positions, entity_labels, entity_weights = mask_entities(
            entity_ids, attention, self.entity_spec, rng)
        counts["masked_tokens"] += int(weights.sum())
        counts["masked_entities"] += int(entity_weights.sum())
        return {**columns, "masked_lm_positions": positions, "masked_lm_ids": labels, "masked_lm_weights": weights,
                "masked_entity_positions": entity_positions, "masked_entity_ids": entity_labels,
                "masked_entity_weights": entity_weights}


def options_record(options: LukeOptions) -> dict:
    """The options as the manifest records them."""
    return {**asdict(options), "objective": "luke", "max_entity_predictions": options.max_entity_predictions}


class LukeRows:
    """The dataset map of LUKE files: mention spans -> entity_position_ids, and for dynamic files the words
    and entities masked anew every time a row is read."""

    def __init__(self, manifest: dict, seed: int) -> None:
        options = manifest["options"]
        self.width = options["max_mention_length"]
        self.dynamic = options["masking"] == "dynamic"
        self.rng = np.random.default_rng(seed)
        recorded = manifest["masking_spec"]
        special = np.array(recorded["special_ids"], dtype=np.int32)
        replacement = np.setdiff1d(np.arange(recorded["vocab_size"], dtype=np.int32), special)
        self.spec = MaskingSpec(recorded["mask_id"], special, replacement, options["masked_lm_prob"],
                                options["max_predictions_per_seq"])
        entity = manifest["entity_masking_spec"]
        self.entity_spec = EntityMaskingSpec(entity["mask_id"], entity["masked_entity_prob"], entity["max_predictions"])

    @property
    def input_columns(self) -> list[str]:
        """What the map reads."""
        dynamic = ["input_ids", "word_starts", "entity_ids", "entity_attention_mask"] if self.dynamic else []
        return dynamic + ["entity_starts", "entity_stops"]

    @property
    def output_columns(self) -> list[str]:
        """What the map writes."""
        dynamic = ["input_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights", "entity_ids",
                   "entity_attention_mask", *MASKED_ENTITY_COLUMNS] if self.dynamic else []
        return dynamic + ["entity_position_ids", "entity_segment_ids"]

    def __call__(self, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
        starts, stops = columns[-2:]
        positions = expand_positions(starts[None], stops[None], self.width)[0]
        segments = np.zeros_like(starts, dtype=np.int32)
        if not self.dynamic:
            return positions, segments
        ids, word_starts, entity_ids, attention = columns[:4]
        masked, lm_positions, lm_ids, lm_weights = mask_batch(ids[None], word_starts[None], self.spec, self.rng)
        entities, *entity_labels = mask_entities(entity_ids[None], attention[None], self.entity_spec, self.rng)
        return (masked[0].astype(np.int32), lm_positions[0], lm_ids[0], lm_weights[0], entities[0].astype(np.int32),
                attention, *(column[0] for column in entity_labels), positions, segments)
