"""SQuAD v1.1 and v2.0 scoring, following the rules of the official evaluate-v1.1.py and
evaluate-v2.0.py so that the numbers agree with them to the last digit.

Both compare a prediction with each gold answer after `normalize_answer` (lowercase, drop
ASCII punctuation, drop the articles a/an/the, collapse whitespace) and keep the best
score over the gold answers. v1.1 sums per-question scores over every question in file
order; v2.0 keys scores by question id, treats questions without gold answers as "no
answer" (the right prediction is the empty string) and can count a prediction as empty
when its no-answer probability is above a threshold.

Where the official scripts stop or misbehave, this module does the following instead:
- v1.1 on a file with unanswerable questions (no gold answers, as in v2.0 files): those
  questions are left out (the official script crashes on them); `unanswerable_ids` lists them.
- v2.0 with a prediction missing: scored as wrong at every threshold and counted in the
  totals (the official script prints "Missing prediction for ..." and then fails with a
  KeyError when it builds the HasAns/NoAns blocks). With every prediction present the
  output is the official one exactly.
"""
import collections
import re
import string
from typing import Any, Iterator, Mapping, Optional

from src.errors import UserError

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# ---------------------------------------------------------------- reading and checking inputs

def check_dataset(obj: Any, source: str = "data file") -> list:
    """The list of articles of a SQuAD-format file (`{"data": [{"paragraphs": [{"qas": ...}]}]}`),
    with every question checked to have a string id and a list of answers with text."""
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise UserError(f"{source}: expected a SQuAD JSON object with a \"data\" list of articles")
    for a, article in enumerate(obj["data"]):
        where = f"{source}: data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise UserError(f"{where}: expected an article with a \"paragraphs\" list")
        for p, paragraph in enumerate(article["paragraphs"]):
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise UserError(f"{where}.paragraphs[{p}]: expected a paragraph with a \"qas\" list")
            for q, qa in enumerate(paragraph["qas"]):
                at = f"{where}.paragraphs[{p}].qas[{q}]"
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), str):
                    raise UserError(f"{at}: expected a question with a string \"id\"")
                answers = qa.get("answers")
                if not isinstance(answers, list) or not all(
                        isinstance(ans, dict) and isinstance(ans.get("text"), str) for ans in answers):
                    raise UserError(f"{at} (id {qa['id']}): expected \"answers\" to be a list of "
                                    "objects with a string \"text\"")
    return obj["data"]


def check_predictions(obj: Any, source: str = "predictions file") -> dict:
    """A predictions file must be a JSON object mapping question id to answer text."""
    if not isinstance(obj, dict):
        raise UserError(f"{source}: expected a JSON object mapping question id to answer text, "
                        f"got a JSON {_json_type(obj)}")
    for qid, text in obj.items():
        if not isinstance(text, str):
            raise UserError(f"{source}: the prediction for {qid!r} is a JSON {_json_type(text)}; "
                            "expected a string (\"\" for no answer)")
    return obj


def check_na_probs(obj: Any, source: str = "na_prob file") -> dict:
    """A no-answer probability file must be a JSON object mapping question id to a number."""
    if not isinstance(obj, dict):
        raise UserError(f"{source}: expected a JSON object mapping question id to a number, "
                        f"got a JSON {_json_type(obj)}")
    for qid, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{source}: the value for {qid!r} is a JSON {_json_type(value)}; "
                            "expected a number")
    return obj


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def iter_questions(dataset: list) -> Iterator[tuple[str, list[str]]]:
    """(question id, gold answer texts) for every question, in file order (duplicates kept)."""
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield qa["id"], [answer["text"] for answer in qa["answers"]]


def missing_ids(dataset: list, predictions: Mapping[str, str]) -> list[str]:
    """Question ids of the data file with no prediction, in file order, each once."""
    return list(dict.fromkeys(qid for qid, _ in iter_questions(dataset) if qid not in predictions))


def unknown_ids(dataset: list, predictions: Mapping[str, str]) -> list[str]:
    """Prediction ids that are not questions of the data file (the scorers ignore them)."""
    known = {qid for qid, _ in iter_questions(dataset)}
    return [qid for qid in predictions if qid not in known]


def unanswerable_ids(dataset: list) -> list[str]:
    """Questions without gold answers (SQuAD v2.0's unanswerable ones), each once."""
    return list(dict.fromkeys(qid for qid, answers in iter_questions(dataset) if not answers))


# ---------------------------------------------------------------- shared text rules

def normalize_answer(text: str) -> str:
    """Lowercase, drop string.punctuation, replace whole-word articles by a space, collapse whitespace."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    """Harmonic mean of token precision and recall; 0 when nothing overlaps."""
    overlap = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
    if overlap == 0:
        return 0
    precision = 1.0 * overlap / len(pred_tokens)
    recall = 1.0 * overlap / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


# ---------------------------------------------------------------- SQuAD v1.1

def exact_match_v1(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def f1_v1(prediction: str, gold: str) -> float:
    return _token_f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def evaluate_v1(dataset: list, predictions: Mapping[str, str]) -> dict:
    """evaluate-v1.1.py's result, {"exact_match": ..., "f1": ...} in percent. Every question
    counts once per occurrence; one without a prediction scores 0; one without gold answers
    is left out (see `unanswerable_ids`)."""
    exact = f1 = total = 0
    for qid, golds in iter_questions(dataset):
        if not golds:
            continue
        total += 1
        if qid not in predictions:
            continue
        prediction = predictions[qid]
        exact += max(exact_match_v1(prediction, gold) for gold in golds)
        f1 += max(f1_v1(prediction, gold) for gold in golds)
    if total == 0:
        raise UserError("the data file has no answerable questions to score")
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


# ---------------------------------------------------------------- SQuAD v2.0

def exact_v2(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_v2(gold: str, prediction: str) -> float:
    """Token F1; when either side has no tokens, 1 if both have none, else 0."""
    gold_tokens = normalize_answer(gold).split()
    pred_tokens = normalize_answer(prediction).split()
    if not gold_tokens or not pred_tokens:
        return int(gold_tokens == pred_tokens)
    return _token_f1(pred_tokens, gold_tokens)


def has_answer_by_id(dataset: list) -> dict[str, bool]:
    """Question id -> whether it has gold answers (the last occurrence wins, as in a dict)."""
    return {qid: bool(golds) for qid, golds in iter_questions(dataset)}


def raw_scores_v2(dataset: list, predictions: Mapping[str, str]) -> tuple[dict, dict]:
    """Per question id, the best exact and F1 over the gold answers whose normalized text is
    non-empty (or over [""] when none is). A missing prediction scores 0."""
    exact, f1 = {}, {}
    for qid, golds in iter_questions(dataset):
        golds = [gold for gold in golds if normalize_answer(gold)] or [""]
        if qid not in predictions:
            exact[qid] = f1[qid] = 0
            continue
        prediction = predictions[qid]
        exact[qid] = max(exact_v2(gold, prediction) for gold in golds)
        f1[qid] = max(f1_v2(gold, prediction) for gold in golds)
    return exact, f1


def apply_threshold(scores: dict, na_probs: Mapping[str, float], has_answer: dict[str, bool],
                    threshold: float, missing: set) -> dict:
    """A question whose no-answer probability is above `threshold` is answered empty: right
    exactly when it has no gold answer."""
    out = {}
    for qid, score in scores.items():
        if qid not in missing and na_probs[qid] > threshold:
            out[qid] = float(not has_answer[qid])
        else:
            out[qid] = score
    return out


def _block(exact: dict, f1: dict, qids: Optional[list] = None) -> list[tuple[str, Any]]:
    if qids is None:
        total = len(exact)
        return [("exact", 100.0 * sum(exact.values()) / total),
                ("f1", 100.0 * sum(f1.values()) / total), ("total", total)]
    total = len(qids)
    return [("exact", 100.0 * sum(exact[q] for q in qids) / total),
            ("f1", 100.0 * sum(f1[q] for q in qids) / total), ("total", total)]


def best_threshold(predictions: Mapping[str, str], scores: dict, na_probs: Mapping[str, float],
                   has_answer: dict[str, bool], missing: set = frozenset()) -> tuple[float, float]:
    """The best total score over all no-answer thresholds, and the threshold reaching it.

    Start from every question answered empty (the no-answer questions right), then walk the
    questions by increasing no-answer probability, letting each one keep its prediction: an
    answerable one gains its score, an unanswerable one loses 1 if the prediction is non-empty.
    Missing predictions are wrong whatever the threshold, so they take no part in the walk."""
    score = sum(1 for qid, has in has_answer.items() if not has and qid not in missing)
    best, best_thresh = score, 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores or qid in missing:
            continue
        if has_answer[qid]:
            diff = scores[qid]
        elif predictions[qid]:
            diff = -1
        else:
            diff = 0
        score += diff
        if score > best:
            best, best_thresh = score, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def evaluate_v2(dataset: list, predictions: Mapping[str, str],
                na_probs: Optional[Mapping[str, float]] = None,
                na_prob_thresh: float = 1.0,
                na_prob_source: str = "na_prob file") -> "collections.OrderedDict[str, Any]":
    """evaluate-v2.0.py's `out_eval`: exact, f1, total, then HasAns_* and NoAns_* (when there
    are such questions), then with `na_probs` best_exact(_thresh) and best_f1(_thresh)."""
    has_answer = has_answer_by_id(dataset)
    if not has_answer:
        raise UserError("the data file has no questions to score")
    missing = set(missing_ids(dataset, predictions))
    given = na_probs if na_probs is not None else {qid: 0.0 for qid in predictions}
    lacking = [qid for qid in has_answer if qid not in missing and qid not in given]
    if lacking:
        raise UserError(f"{na_prob_source}: no value for {len(lacking)} predicted question(s), "
                        f"e.g. {lacking[0]!r}; expected one number per question id")
    exact_raw, f1_raw = raw_scores_v2(dataset, predictions)
    exact = apply_threshold(exact_raw, given, has_answer, na_prob_thresh, missing)
    f1 = apply_threshold(f1_raw, given, has_answer, na_prob_thresh, missing)
    out = collections.OrderedDict(_block(exact, f1))
    has_ids = [qid for qid, has in has_answer.items() if has]
    no_ids = [qid for qid, has in has_answer.items() if not has]
    for prefix, qids in (("HasAns", has_ids), ("NoAns", no_ids)):
        if qids:
            for key, value in _block(exact, f1, qids):
                out[f"{prefix}_{key}"] = value
    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = best_threshold(
            predictions, exact_raw, na_probs, has_answer, missing)
        out["best_f1"], out["best_f1_thresh"] = best_threshold(
            predictions, f1_raw, na_probs, has_answer, missing)
    return out
