"""SQuAD postprocessing: start/end logits of every window -> answer text per question, n-best lists, null odds.

The input is the evaluation columns (`example_id`, `context`, `token_offsets` per feature), so the
same call serves features built in memory (`squad_features.eval_columns`) and columns read back from
an eval MindRecord folder (`task_records.load_task_columns`).
"""
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

PREDICTIONS = "predictions.json"
NBEST = "nbest_predictions.json"
NULL_ODDS = "null_odds.json"


def postprocess_squad(columns: Mapping[str, np.ndarray], start_logits: np.ndarray, end_logits: np.ndarray,
                      n_best_size: int = 20, max_answer_length: int = 30, version_2_with_negative: bool = False,
                      null_score_diff_threshold: float = 0.0, result_unique_ids: np.ndarray | None = None,
                      ) -> tuple[dict[str, str], dict[str, list[dict[str, Any]]], dict[str, float]]:
    """Pick each question's answer over all its windows (BERT/HF run_squad logic).

    Candidates are the top n_best_size start and end tokens of every window of the question, paired
    with start <= end, at most max_answer_length tokens, both in the context; the text is cut from the
    original context by the character offsets, and n-best keeps distinct non-empty texts by score
    (start_logit + end_logit). With version_2_with_negative, the null score is the minimum over the
    windows of start_logit[0] + end_logit[0]; the answer is "" when null score - best span score >
    null_score_diff_threshold; null_odds holds that difference (evaluate-v2.0.py's --na-prob-file).
    A question with no valid span answers "" with a span score of 0 (BERT's "empty" entry).
    Logit rows follow the columns' row order, or result_unique_ids when given (rows of any order).
    """
    start_logits, end_logits = _aligned(columns, start_logits, end_logits, result_unique_ids)
    offsets = np.asarray(columns["token_offsets"])
    top = min(n_best_size, start_logits.shape[1])
    starts = np.argsort(-start_logits, axis=1, kind="stable")[:, :top]
    ends = np.argsort(-end_logits, axis=1, kind="stable")[:, :top]
    scores, valid = _pair_grid(start_logits, end_logits, offsets, starts, ends, max_answer_length)
    predictions: dict[str, str] = {}
    nbest: dict[str, list[dict[str, Any]]] = {}
    null_odds: dict[str, float] = {}
    for qid, rows in _rows_by_example(columns["example_id"]):
        context = str(columns["context"][rows[0]])
        entries = _best_spans(rows, context, scores, valid, starts, ends, start_logits, end_logits, offsets,
                              n_best_size)
        best = entries[0] if entries else {"text": "", "start_logit": 0.0, "end_logit": 0.0}
        predictions[qid] = best["text"]
        if version_2_with_negative:
            null_row = rows[np.argmin(start_logits[rows, 0] + end_logits[rows, 0])]
            null = {"text": "", "start_logit": float(start_logits[null_row, 0]),
                    "end_logit": float(end_logits[null_row, 0])}
            odds = _score(null) - _score(best)
            null_odds[qid] = odds
            if odds > null_score_diff_threshold:
                predictions[qid] = ""
            entries = sorted(entries + [null], key=_score, reverse=True)[:n_best_size]
        nbest[qid] = _with_probabilities(entries or [best])
    return predictions, nbest, null_odds


def write_predictions(folder: str | os.PathLike[str], predictions: dict[str, str],
                      nbest: dict[str, list[dict[str, Any]]], null_odds: dict[str, float]) -> list[Path]:
    """Write predictions.json, nbest_predictions.json and (v2) null_odds.json, each atomically; returns the paths."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    outputs = [(PREDICTIONS, predictions), (NBEST, nbest)] + ([(NULL_ODDS, null_odds)] if null_odds else [])
    written = []
    for name, content in outputs:
        path = target / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written


def _aligned(columns: Mapping[str, np.ndarray], start_logits: np.ndarray, end_logits: np.ndarray,
             result_unique_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Logits as float arrays in the columns' row order (reordered by unique id when result ids are given)."""
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    if result_unique_ids is not None:
        unique_ids = np.asarray(columns["unique_ids"])
        order = {int(uid): row for row, uid in enumerate(np.asarray(result_unique_ids))}
        missing = [int(uid) for uid in unique_ids if int(uid) not in order]
        if missing:
            raise ValueError(f"no logits for {len(missing)} of {len(unique_ids)} features (first unique id "
                             f"{missing[0]}); evaluate every feature (no dropped remainder)")
        rows = np.array([order[int(uid)] for uid in unique_ids], dtype=np.int64)
        start_logits, end_logits = start_logits[rows], end_logits[rows]
    if start_logits.shape != end_logits.shape or start_logits.shape != np.shape(columns["token_offsets"])[:2]:
        raise ValueError(f"logits of shape {start_logits.shape} / {end_logits.shape} do not match the "
                         f"{np.shape(columns['token_offsets'])[:2]} features")
    return start_logits, end_logits


def _pair_grid(start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray, starts: np.ndarray,
               ends: np.ndarray, max_answer_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and validity of every (top start, top end) pair of every window: shape (windows, top, top)."""
    in_context = offsets[..., 0] >= 0
    start_ok = np.take_along_axis(in_context, starts, axis=1)[:, :, None]
    end_ok = np.take_along_axis(in_context, ends, axis=1)[:, None, :]
    span = ends[:, None, :] - starts[:, :, None]
    valid = start_ok & end_ok & (span >= 0) & (span < max_answer_length)
    scores = (np.take_along_axis(start_logits, starts, axis=1)[:, :, None]
              + np.take_along_axis(end_logits, ends, axis=1)[:, None, :])
    return scores, valid


def _rows_by_example(example_ids: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(qid, its feature rows) in order of each question's first feature."""
    names, first, inverse = np.unique(np.asarray(example_ids), return_index=True, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(names)))
    groups = np.split(order, bounds[:-1])
    return [(str(names[code]), groups[code]) for code in np.argsort(first, kind="stable")]


def _best_spans(rows: np.ndarray, context: str, scores: np.ndarray, valid: np.ndarray, starts: np.ndarray,
                ends: np.ndarray, start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray,
                n_best_size: int) -> list[dict[str, Any]]:
    """The n_best_size highest-scoring distinct non-empty answer texts over the given windows."""
    top = starts.shape[1]
    flat_scores = scores[rows].reshape(-1)
    candidates = np.flatnonzero(valid[rows].reshape(-1))
    candidates = candidates[np.argsort(-flat_scores[candidates], kind="stable")]
    entries, seen = [], set()
    for candidate in candidates:
        window, pair = divmod(int(candidate), top * top)
        row = rows[window]
        start, end = starts[row, pair // top], ends[row, pair % top]
        text = context[offsets[row, start, 0]:offsets[row, end, 1]]
        if not text.strip() or text in seen:
            continue
        seen.add(text)
        entries.append({"text": text, "start_logit": float(start_logits[row, start]),
                        "end_logit": float(end_logits[row, end])})
        if len(entries) == n_best_size:
            break
    return entries


def _score(entry: dict[str, Any]) -> float:
    """A span's score: start logit + end logit."""
    return entry["start_logit"] + entry["end_logit"]


def _with_probabilities(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries with a softmax probability over their scores, in the official nbest order of keys."""
    scores = np.array([_score(entry) for entry in entries])
    weights = np.exp(scores - scores.max())
    probabilities = weights / weights.sum()
    return [{"text": entry["text"], "probability": float(p), "start_logit": entry["start_logit"],
             "end_logit": entry["end_logit"]} for entry, p in zip(entries, probabilities)]
