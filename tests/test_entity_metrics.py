"""LUKE's entity-task metrics against hand-computed values, LUKE's own counting loops and seqeval."""
import numpy as np
import pytest
from seqeval.metrics import f1_score, precision_score, recall_score

from src.metrics.entities import decode_spans, relation_scores, typing_scores
from src.metrics.ner import entity_scores


def _luke_typing(logits, labels):
    """The LUKE repository's entity typing evaluation loop (logit > 0), transcribed."""
    predicted = gold = correct = 0
    for row_logits, row_labels in zip(logits, labels):
        guess = {i for i, v in enumerate(row_logits) if v > 0}
        truth = {i for i, v in enumerate(row_labels) if v > 0}
        predicted, gold, correct = predicted + len(guess), gold + len(truth), correct + len(guess & truth)
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold
    return precision, recall, 2 * precision * recall / (precision + recall)


def _luke_relations(predictions, labels, no_relation):
    """The LUKE repository's relation classification evaluation loop, transcribed."""
    predicted = gold = correct = 0
    for prediction, label in zip(predictions, labels):
        predicted += prediction != no_relation
        if label != no_relation:
            gold += 1
            correct += prediction == label
    precision, recall = correct / predicted, correct / gold
    return precision, recall, 2 * precision * recall / (precision + recall)


def test_typing_scores_by_hand():
    logits = np.array([[1.0, -1.0, 0.5], [-2.0, 3.0, -0.1], [0.0, -1.0, -1.0]])
    labels = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0]])
    # predicted (0,0) (0,2) (1,1); gold (0,0) (1,1) (1,2) (2,0): a logit of exactly 0 is no prediction
    scores = typing_scores(logits, labels)
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 2 / 4, "f1": 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)})


def test_typing_scores_equal_luke_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        logits = rng.normal(size=(30, 9))
        labels = (rng.random((30, 9)) < 0.3).astype(np.int32)
        labels[0, 0] = 1
        expected = _luke_typing(logits, labels)
        scores = typing_scores(logits, labels)
        assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx(expected)


def test_relation_scores_by_hand():
    # gold relations at rows 0, 1, 3; predicted at 0, 2, 3; right at 0 only
    scores = relation_scores([1, 0, 2, 3], [1, 2, 0, 2], no_relation=0)
    assert scores == pytest.approx({"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3})
    assert relation_scores([0, 0], [0, 0], no_relation=0)["f1"] == 0.0


def test_relation_scores_equal_luke_loop_with_no_relation_anywhere():
    rng = np.random.default_rng(1)
    for no_relation in (0, 5, 41):
        predictions, labels = rng.integers(0, 42, 200), rng.integers(0, 42, 200)
        labels[rng.random(200) < 0.5] = no_relation
        right = rng.random(200) < 0.4
        predictions[right] = labels[right]
        scores = relation_scores(predictions, labels, no_relation)
        assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx(
            _luke_relations(predictions, labels, no_relation))


def test_decode_spans_by_hand():
    labels = ["O", "PER", "LOC"]
    spans = [(0, 2), (1, 3), (3, 4), (0, 1), (4, 5)]
    logits = np.array([[0.0, 5.0, 1.0],   # (0,2) PER 5.0: overlaps (1,3), dropped
                       [0.0, 1.0, 6.0],   # (1,3) LOC 6.0: kept before it (highest score)
                       [0.0, 0.5, 2.0],   # (3,4) LOC 2.0: kept
                       [0.0, 4.0, 0.0],   # (0,1) PER 4.0: kept
                       [9.0, 1.0, 1.0]])  # (4,5): best label O, dropped
    assert decode_spans(spans, logits, labels, 6) == ["B-PER", "B-LOC", "I-LOC", "B-LOC", "O", "O"]


def test_decoded_span_scores_equal_seqeval():
    rng = np.random.default_rng(2)
    labels = ["O", "PER", "LOC", "ORG"]
    gold, predicted = [], []
    for _ in range(50):
        length = int(rng.integers(1, 12))
        spans = [(start, end) for start in range(length) for end in range(start + 1, min(length, start + 4) + 1)]
        logits = rng.normal(size=(len(spans), len(labels)))
        logits[:, 0] += 1.0
        tags = decode_spans(spans, logits, labels, length)
        chosen = [(start, end) for start, end in spans if tags[start].startswith("B-")
                  and all(tag.startswith("I-") for tag in tags[start + 1:end])
                  and (end == length or not tags[end].startswith("I-"))]
        assert sum(end - start for start, end in chosen) == sum(tag != "O" for tag in tags)
        predicted.append(tags)
        gold.append(decode_spans(spans, rng.normal(size=logits.shape) + np.array([1.0, 0, 0, 0]), labels, length))
    ours = entity_scores(gold, predicted)
    assert ours["f1"] == pytest.approx(f1_score(gold, predicted))
    assert ours["precision"] == pytest.approx(precision_score(gold, predicted))
    assert ours["recall"] == pytest.approx(recall_score(gold, predicted))
    assert 0 < ours["f1"] < 1


def test_shape_mismatches_are_value_errors():
    with pytest.raises(ValueError):
        typing_scores(np.zeros((2, 9)), np.zeros((2, 8)))
    with pytest.raises(ValueError):
        relation_scores([1, 2], [1], no_relation=0)
