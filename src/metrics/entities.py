"""The LUKE repository's entity-task metrics: Open Entity typing, TACRED relations and span NER.

Open Entity: a type is predicted where its logit is > 0 (sigmoid > 0.5), scored by micro precision,
recall and F1 over all (example, type) pairs. TACRED: micro F1 where no_relation counts as no prediction
and no gold relation. Span NER: each candidate span takes its best label (spans whose best is "O" are
dropped); the rest are kept greedily by score where they overlap no kept span and written as BIO tags,
which ner.entity_scores scores as seqeval does.
"""
from collections.abc import Sequence

import numpy as np

from src.metrics.ner import precision_recall_f1

Span = tuple[int, int]  # (first word, last word + 1)


def typing_scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Micro precision / recall / F1 of multi-label typing: logits and 0/1 labels of shape (examples, types)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.shape != labels.shape:
        raise ValueError(f"logits of shape {logits.shape} but labels of shape {labels.shape}")
    predicted, gold = logits > 0, labels > 0
    precision, recall, f1 = precision_recall_f1(int((predicted & gold).sum()), int(predicted.sum()), int(gold.sum()))
    return {"precision": precision, "recall": recall, "f1": f1}


def relation_scores(predictions: Sequence[int], labels: Sequence[int], no_relation: int) -> dict[str, float]:
    """Micro precision / recall / F1 of relation ids, no_relation counting as neither predicted nor gold."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape} predictions but {labels.shape} labels")
    predicted, gold = predictions != no_relation, labels != no_relation
    correct = int((gold & (predictions == labels)).sum())
    precision, recall, f1 = precision_recall_f1(correct, int(predicted.sum()), int(gold.sum()))
    return {"precision": precision, "recall": recall, "f1": f1}


def decode_spans(spans: Sequence[Span], logits: np.ndarray, labels: Sequence[str], length: int,
                 none_label: int = 0) -> list[str]:
    """BIO tags of a sentence of `length` words from its candidate spans' logits (spans, labels): each span's
    best label and score; spans whose best label is none_label are dropped; the rest are taken by score,
    highest first (ties in span order), each kept only where it overlaps no span already kept."""
    logits = np.asarray(logits)
    best, scores = logits.argmax(-1), logits.max(-1)
    tags = ["O"] * length
    for index in sorted(range(len(spans)), key=lambda i: -scores[i]):
        start, end = spans[index]
        if best[index] == none_label or any(tag != "O" for tag in tags[start:end]):
            continue
        kind = labels[best[index]]
        tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
    return tags

