"""Entity-level precision, recall and F1, as seqeval computes them in its default mode
(conlleval-compatible chunking, IOB1/IOB2/IOE/IOBES tags read leniently).

A tag is read as a prefix letter and a type: "B-PER" is ("B", "PER"), "O" is ("O", "_").
A chunk ends before a token when the previous tag was E or S, when a B or I chunk meets
B, S or O, or when the type changes; one starts at B or S, at E or I after O, E or S, and
at any type change. So an I- after O starts a chunk, and an I-ORG after B-PER starts a new
one. Sentences are joined with an "O" between them, as seqeval does. An entity counts as
right when its type, start and end all match a gold one.
"""
from collections import Counter
from typing import Sequence

Entity = tuple[str, int, int]  # (type, first token, last token)


def _split_tag(tag: str) -> tuple[str, str]:
    return tag[:1], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str]) -> list[Entity]:
    """The chunks of one sentence's tags, as (type, first, last) token indices."""
    entities = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, full_tag in enumerate(list(tags) + ["O"]):
        tag, type_ = _split_tag(full_tag)
        if _ends(prev_tag, tag, prev_type, type_):
            entities.append((prev_type, begin, i - 1))
        if _starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return entities


def precision_recall_f1(correct: int, predicted: int, true: int) -> tuple[float, float, float]:
    """Micro precision, recall and F1 from counts (0.0 where a denominator is 0)."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    denominator = precision + recall
    f1 = 2 * precision * recall / (denominator if denominator else 1.0)
    return precision, recall, f1


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Micro-averaged {"precision", "recall", "f1", "support"} (fractions; support is the number
    of gold entities) and "per_type": {type: {"precision", "recall", "f1", "support"}}, for
    sentences of gold and predicted tags. A sentence pair of different lengths is a ValueError."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted ones")
    flat_gold, flat_pred = [], []
    for n, (gold_tags, pred_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sentence {n}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted ones")
        flat_gold += list(gold_tags) + ["O"]   # an O between sentences, as seqeval joins them
        flat_pred += list(pred_tags) + ["O"]
    gold_set, pred_set = set(get_entities(flat_gold)), set(get_entities(flat_pred))
    correct_set = gold_set & pred_set
    correct, pred, true = (Counter(entity[0] for entity in group)
                           for group in (correct_set, pred_set, gold_set))
    per_type = {}
    for type_ in sorted(true.keys() | pred.keys()):
        precision, recall, f1 = precision_recall_f1(correct[type_], pred[type_], true[type_])
        per_type[type_] = {"precision": precision, "recall": recall, "f1": f1, "support": true[type_]}
    precision, recall, f1 = precision_recall_f1(len(correct_set), len(pred_set), len(gold_set))
    return {"precision": precision, "recall": recall, "f1": f1, "support": len(gold_set),
            "per_type": per_type}
