"""Sentence(-pair) classification and regression metrics, and which metrics each task reports.

The formulas are the ones GLUE/CLUE leaderboards (and sklearn/scipy) use: accuracy, F1 of
the positive class 1 (MRPC, QQP), Matthews correlation (CoLA), Pearson and Spearman
correlation (STS-B; Spearman ranks ties by their average rank). A correlation that is
undefined because one side is constant is reported as 0.0 (as sklearn does for MCC), so
that picking the best checkpoint never compares against NaN.
"""
import math
from typing import Sequence

import numpy as np

from src.errors import UserError

# Metric names per task, as keys of the scores dict that task's evaluation produces; the
# first one picks the best checkpoint unless PRIMARY says otherwise.
TASK_METRICS: dict[str, list[str]] = {
    # GLUE
    "cola": ["mcc"],
    "sst2": ["accuracy"],
    "mrpc": ["f1", "accuracy"],
    "stsb": ["pearson", "spearman"],
    "qqp": ["f1", "accuracy"],
    "mnli": ["accuracy"],
    "mnli_mm": ["accuracy"],
    "qnli": ["accuracy"],
    "rte": ["accuracy"],
    "wnli": ["accuracy"],
    "ax": ["mcc"],
    # CLUE classification (and the ERNIE 1.0 Chinese tasks)
    "afqmc": ["accuracy"],
    "tnews": ["accuracy"],
    "iflytek": ["accuracy"],
    "cmnli": ["accuracy"],
    "ocnli": ["accuracy"],
    "cluewsc2020": ["accuracy"],
    "csl": ["accuracy"],
    "c3": ["accuracy"],
    "chid": ["accuracy"],
    "xnli": ["accuracy"],
    "lcqmc": ["accuracy"],
    "chnsenticorp": ["accuracy"],
    # multiple choice
    "race": ["accuracy"],
    # entity recognition (entity-level, src.metrics.ner)
    "ner": ["f1", "precision", "recall"],
    "cluener": ["f1", "precision", "recall"],
    "msra_ner": ["f1", "precision", "recall"],
    "conll2003": ["f1", "precision", "recall"],
    # LUKE's entity tasks (src.metrics.entities): micro scores; TACRED's leave no_relation out
    "open_entity": ["f1", "precision", "recall"],
    "tacred": ["f1", "precision", "recall"],
    # extractive question answering (keys of the official scripts' output)
    "squad_v1": ["exact_match", "f1"],
    "squad_v2": ["exact", "f1"],
    "cmrc2018": ["F1", "EM"],
    "drcd": ["F1", "EM"],
}

# Where the best checkpoint is not chosen by the first metric listed.
PRIMARY = {"squad_v1": "f1", "squad_v2": "f1", "stsb": "pearson"}

ALIASES = {"sst": "sst2", "sts": "stsb", "mnlim": "mnli", "mnlimatched": "mnli",
           "mnlimismatched": "mnli_mm", "squad": "squad_v1", "squad1": "squad_v1",
           "squad11": "squad_v1", "squad2": "squad_v2", "squad20": "squad_v2",
           "wsc": "cluewsc2020", "cmrc": "cmrc2018", "msra": "msra_ner"}


def canonical_task(task: str) -> str:
    """The TASK_METRICS key for a task name, ignoring case, "-", "_" and "." ("SST-2" -> "sst2")."""
    def squash(name: str) -> str:
        return name.lower().replace("-", "").replace("_", "").replace(".", "")
    known = {squash(name): name for name in TASK_METRICS}
    key = squash(task)
    if key in known:
        return known[key]
    if key in ALIASES:
        return ALIASES[key]
    raise UserError(f"unknown task {task!r}; expected one of {', '.join(sorted(TASK_METRICS))}")


def task_metrics(task: str) -> list[str]:
    return list(TASK_METRICS[canonical_task(task)])


def primary_metric(task: str) -> str:
    """The metric (higher is better) that picks the best checkpoint for `task`."""
    task = canonical_task(task)
    return PRIMARY.get(task, TASK_METRICS[task][0])


def _pair(predictions: Sequence, labels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.ndim != 1 or predictions.shape != labels.shape or predictions.size == 0:
        raise ValueError(f"expected two non-empty 1-D arrays of one length, got shapes "
                         f"{predictions.shape} and {labels.shape}")
    return predictions, labels


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    predictions, labels = _pair(predictions, labels)
    return float(np.mean(predictions == labels))


def f1_binary(predictions: Sequence, labels: Sequence, positive=1) -> float:
    """F1 of the positive class: 2TP / (2TP + FP + FN); 0.0 when there is no positive at all."""
    predictions, labels = _pair(predictions, labels)
    tp = int(np.sum((predictions == positive) & (labels == positive)))
    fp = int(np.sum((predictions == positive) & (labels != positive)))
    fn = int(np.sum((predictions != positive) & (labels == positive)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews_corrcoef(predictions: Sequence, labels: Sequence) -> float:
    """Matthews correlation, in its multi-class form (for two classes the usual
    (TP*TN - FP*FN) / sqrt(...)); 0.0 when either side has a single class."""
    predictions, labels = _pair(predictions, labels)
    classes = np.unique(np.concatenate([predictions, labels]))
    true_counts = [int(np.sum(labels == c)) for c in classes]
    pred_counts = [int(np.sum(predictions == c)) for c in classes]
    n, correct = len(labels), int(np.sum(predictions == labels))
    cov_tp = correct * n - sum(t * p for t, p in zip(true_counts, pred_counts))
    cov_pp = n * n - sum(p * p for p in pred_counts)
    cov_tt = n * n - sum(t * t for t in true_counts)
    if cov_pp == 0 or cov_tt == 0:
        return 0.0
    return cov_tp / math.sqrt(cov_tt * cov_pp)


def pearson(predictions: Sequence, labels: Sequence) -> float:
    """Pearson correlation; 0.0 when either side is constant."""
    x, y = (a.astype(np.float64) for a in _pair(predictions, labels))
    x, y = x - x.mean(), y - y.mean()
    norm = math.sqrt(float(np.dot(x, x))) * math.sqrt(float(np.dot(y, y)))
    if norm == 0.0:
        return 0.0
    return max(-1.0, min(1.0, float(np.dot(x, y)) / norm))


def average_ranks(values: Sequence) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(predictions: Sequence, labels: Sequence) -> float:
    """Spearman rank correlation: Pearson of the average ranks."""
    predictions, labels = _pair(predictions, labels)
    return pearson(average_ranks(predictions), average_ranks(labels))


METRIC_FUNCTIONS = {"accuracy": accuracy, "f1": f1_binary, "mcc": matthews_corrcoef,
                    "pearson": pearson, "spearman": spearman}


def classification_scores(task: str, predictions: Sequence, labels: Sequence) -> dict[str, float]:
    """Every metric TASK_METRICS lists for a classification/regression task, by name."""
    names = task_metrics(task)
    unknown = [name for name in names if name not in METRIC_FUNCTIONS]
    if unknown:
        raise ValueError(f"{task} is not scored from class labels (its metrics: {', '.join(names)})")
    return {name: METRIC_FUNCTIONS[name](predictions, labels) for name in names}
