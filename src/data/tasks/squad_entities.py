"""Entity columns of SQuAD windows for LUKE: each example's question and context linked once, the mentions
placed in every `<s> q </s></s> p </s>` window that holds them whole.

Columns (per window): entity_ids (E), entity_position_ids (E, max_mention_length: token columns of
the mention in the window, -1 padded), entity_segment_ids (E), entity_attention_mask (E); E is the
most entities any window of the file has (at most max_entity_length), padding uses the entity
vocabulary's [PAD]. Counted: mentions kept (per window), cut by a window's edge, over
max_entity_length, in the part of a question past max_query_length.
"""
from collections import Counter
from dataclasses import dataclass

import numpy as np

from src.data.entities.linking import EntityLinker, Mention

ENTITY_COLUMNS = ("entity_ids", "entity_position_ids", "entity_segment_ids", "entity_attention_mask")


@dataclass(frozen=True)
class WindowLayout:
    """Where each window's pieces sit: its example, context token range, question length, first columns."""

    example: np.ndarray
    window_start: np.ndarray
    window_length: np.ndarray
    question_length: np.ndarray
    question_column: int
    context_column: np.ndarray
    question_type: int
    context_type: int


class SquadEntities:
    """Links a chunk's examples and lays their mentions out per window (numpy over all windows at once)."""

    def __init__(self, linker: EntityLinker) -> None:
        self.linker = linker
        self.pad_id = linker.vocab.pad_id
        self.width = linker.options.max_mention_length

    def __reduce__(self) -> tuple:
        """Pickled (for worker processes) as its linker."""
        return SquadEntities, (self.linker,)

    def columns(self, titles: list[str], questions: list[str], question_spans: list[np.ndarray],
                contexts: list[str], context_spans: list[np.ndarray], codes: np.ndarray,
                layout: WindowLayout, counts: Counter) -> dict[str, np.ndarray]:
        """Entity columns for the windows of examples (titles/questions per example, contexts by code);
        counts gets the mentions found, kept and dropped by reason."""
        lengths = np.zeros(len(titles), dtype=np.int64)
        lengths[layout.example] = layout.question_length
        articles = [self.linker.article(title) for title in titles]
        asked = _question_mentions(self.linker.detect(articles, questions, question_spans, counts), lengths, counts)
        pairs: dict[tuple[int, str], int] = {}
        source = np.array([pairs.setdefault((code, title), len(pairs)) for code, title in zip(codes.tolist(), titles)],
                          dtype=np.int64)
        context_lists = self.linker.detect([self.linker.article(title) for _, title in pairs],
                                           [contexts[code] for code, _ in pairs],
                                           [context_spans[code] for code, _ in pairs], counts)
        question = _placed(_flat(asked), layout.example, np.zeros(len(layout.example), dtype=np.int64),
                           np.full(len(layout.example), np.iinfo(np.int64).max), layout.question_column,
                           layout.question_type)
        context = _placed(_flat(context_lists), source[layout.example], layout.window_start,
                          layout.window_start + layout.window_length, layout.context_column - layout.window_start,
                          layout.context_type)
        counts["dropped_cut_by_window"] += context.pop("cut")
        question.pop("cut")
        return self._arrays(question, context, len(layout.example), counts)

    def _arrays(self, question: dict[str, np.ndarray], context: dict[str, np.ndarray], rows: int,
                counts: Counter) -> dict[str, np.ndarray]:
        """Question entities then context entities per window, at most max_entity_length, padded to the most
        any window of the chunk has (at least one)."""
        merged = {name: np.concatenate([question[name], context[name]]) for name in question}
        order = np.lexsort((np.arange(len(merged["row"])), merged["row"]))
        merged = {name: values[order] for name, values in merged.items()}
        per_row = np.bincount(merged["row"], minlength=rows)
        slot = np.arange(len(merged["row"])) - np.repeat(np.cumsum(per_row) - per_row, per_row)
        limit = self.linker.options.max_entity_length
        counts["dropped_over_max_entity_length"] += int((slot >= limit).sum())
        keep = slot < limit
        counts["kept"] += int(keep.sum())
        merged, slot = {name: values[keep] for name, values in merged.items()}, slot[keep]
        width = max(int(np.minimum(per_row, limit).max(initial=0)), 1)
        ids = np.full((rows, width), self.pad_id, dtype=np.int32)
        segments = np.zeros((rows, width), dtype=np.int32)
        mask = np.zeros((rows, width), dtype=np.int32)
        ids[merged["row"], slot] = merged["entity"]
        segments[merged["row"], slot] = merged["segment"]
        mask[merged["row"], slot] = 1
        positions = np.full((rows, width, self.width), -1, dtype=np.int32)
        columns = merged["first"][:, None] + np.arange(self.width)
        positions[merged["row"], slot] = np.where(columns < merged["stop"][:, None], columns, -1)
        return {"entity_ids": ids, "entity_position_ids": positions, "entity_segment_ids": segments,
                "entity_attention_mask": mask}


def _question_mentions(found: list[list[Mention]], lengths: np.ndarray, counts: Counter) -> list[list[Mention]]:
    """Each question's mentions inside its first `length` tokens (those past it counted as cut)."""
    kept = [[mention for mention in mentions if mention.stop <= length]
            for mentions, length in zip(found, lengths.tolist())]
    counts["dropped_question_truncated"] += sum(map(len, found)) - sum(map(len, kept))
    return kept


def _flat(lists: list[list[Mention]]) -> dict[str, np.ndarray]:
    """Mentions of many texts as flat arrays, with each text's offset and count."""
    counts = np.array([len(mentions) for mentions in lists], dtype=np.int64)
    mentions = [mention for group in lists for mention in group]
    return {"first": np.array([m.first for m in mentions], dtype=np.int64),
            "stop": np.array([m.stop for m in mentions], dtype=np.int64),
            "entity": np.array([m.entity_id for m in mentions], dtype=np.int64),
            "offset": np.cumsum(counts) - counts, "count": counts}


def _placed(mentions: dict[str, np.ndarray], text_of_row: np.ndarray, start: np.ndarray, stop: np.ndarray,
            shift: np.ndarray | int, segment: int) -> dict[str, np.ndarray]:
    """Per window row, the mentions of its text lying in tokens [start, stop), moved to window columns by
    shift; `cut` counts those overlapping the range without lying in it."""
    per_row = mentions["count"][text_of_row]
    row = np.repeat(np.arange(len(text_of_row)), per_row)
    index = np.repeat(mentions["offset"][text_of_row] - (np.cumsum(per_row) - per_row), per_row) \
        + np.arange(int(per_row.sum()))
    first, last = mentions["first"][index], mentions["stop"][index]
    inside = (first >= start[row]) & (last <= stop[row])
    cut = int((~inside & (first < stop[row]) & (last > start[row])).sum())
    shift = np.broadcast_to(shift, len(text_of_row))[row]
    return {"row": row[inside], "first": (first + shift)[inside], "stop": (last + shift)[inside],
            "entity": mentions["entity"][index][inside], "segment": np.full(int(inside.sum()), segment),
            "cut": cut}


def pad_entity_columns(parts: list[dict[str, np.ndarray]], pad_id: int) -> list[dict[str, np.ndarray]]:
    """Chunks' entity columns padded to the widest chunk, so they concatenate."""
    width = max(part["entity_ids"].shape[1] for part in parts)
    fills = {"entity_ids": pad_id, "entity_position_ids": -1, "entity_segment_ids": 0, "entity_attention_mask": 0}
    padded = []
    for part in parts:
        extra = width - part["entity_ids"].shape[1]
        padded.append({**part, **{name: np.pad(part[name], [(0, 0), (0, extra)] + [(0, 0)] * (part[name].ndim - 2),
                                               constant_values=fills[name]) for name in ENTITY_COLUMNS}})
    return padded
