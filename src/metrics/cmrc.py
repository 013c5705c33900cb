"""CMRC 2018 scoring, following the rules of the official cmrc2018_evaluate.py (v6).

- EM: after lowercasing, stripping and removing the punctuation characters `PUNCTUATION`,
  the prediction equals one of the gold answers.
- F1: both sides are cut by `mixed_segmentation` (each CJK character U+4E00..U+9FA5 is a
  segment; the runs of other characters between them are split into words; the
  punctuation characters are dropped first); the longest common *substring* of segments
  gives precision and recall; the best F1 over the gold answers counts.
- Scores are percentages over all questions (a question without a prediction scores 0 and
  is counted in SKIP); AVERAGE is the mean of EM and F1.

The official script splits the non-CJK runs with NLTK's `word_tokenize`. NLTK is not a
dependency here, so `treebank_words` applies the same Treebank rules (quotes, punctuation,
brackets, contractions) to the run as one sentence. NLTK would first split a run into
sentences with its Punkt model; the two differ only for a run holding several English
sentences, which CMRC's short answers do not have.
"""
import collections
import re
from typing import Any, Iterator, Mapping

from src.errors import UserError

# The official list; "……" is two characters, so it never matches one character and a
# lone "…" is kept, as in the official script.
PUNCTUATION = frozenset(["-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
                         "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
                         "「", "」", "（", "）", "－", "～", "『", "』"])


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fa5"


# ---------------------------------------------------------------- Treebank word rules

def _rules(*pairs):
    return [(re.compile(pattern), replacement) for pattern, replacement in pairs]


_OPENING_QUOTES = _rules(
    (r"([«“‘„]|[`]+)", r" \1 "),
    (r'^"', r"``"),
    (r"(``)", r" \1 "),
    (r"([ (\[{<])(\"|'{2})", r"\1 `` "),
    (r"(?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)", r"\1 "),
)
_PUNCTUATION_RULES = _rules(
    (r"([^.])(\.)([\]\)}>\"'»”’ ]*)\s*$", r"\1 \2 \3 "),   # a final period
    (r"([:,])([^\d])", r" \1 \2"),                          # not inside numbers like 1,000
    (r"([:,])$", r" \1 "),
    (r"\.{2,}", r" \g<0> "),
    (r"[;@#$%&]", r" \g<0> "),
    (r"[\u2012-\u2015]", r" \g<0> "),                     # figure, en and em dashes
    (r"([^.])(\.)([\]\)}>\"']*)\s*$", r"\1 \2\3 "),
    (r"[?!]", r" \g<0> "),
    (r"([^'])' ", r"\1 ' "),
    (r"[*]", r" \g<0> "),
    (r"[\]\[(){}<>]", r" \g<0> "),
    (r"--", r" -- "),
)
_CLOSING_QUOTES = _rules(
    (r"([»”’])", r" \1 "),
    (r"''", " '' "),
    (r'"', " '' "),
    (r"\s+", " "),
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),
    (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
)
_CONTRACTIONS = [re.compile(p) for p in (
    r"(?i)\b(can)(not)\b", r"(?i)\b(d)('ye)\b", r"(?i)\b(gim)(me)\b", r"(?i)\b(gon)(na)\b",
    r"(?i)\b(got)(ta)\b", r"(?i)\b(lem)(me)\b", r"(?i)\b(more)('n)\b", r"(?i)\b(wan)(na)(?=\s)",
    r"(?i) ('t)(is)\b", r"(?i) ('t)(was)\b")]


def treebank_words(text: str) -> list[str]:
    """Split a non-CJK run into words the way NLTK's Treebank word tokenizer does."""
    for pattern, replacement in _OPENING_QUOTES + _PUNCTUATION_RULES:
        text = pattern.sub(replacement, text)
    text = f" {text} "
    for pattern, replacement in _CLOSING_QUOTES:
        text = pattern.sub(replacement, text)
    for pattern in _CONTRACTIONS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


# ---------------------------------------------------------------- the official rules

def mixed_segmentation(text: str, drop_punctuation: bool = False) -> list[str]:
    """Lowercased, stripped text as segments: each CJK character (and, when kept, each
    punctuation character) alone, the runs between them split into words."""
    segments: list[str] = []
    run = []
    for char in text.lower().strip():
        if char in PUNCTUATION and drop_punctuation:
            continue
        if _is_cjk(char) or char in PUNCTUATION:
            if run:
                segments.extend(treebank_words("".join(run)))
                run = []
            segments.append(char)
        else:
            run.append(char)
    if run:
        segments.extend(treebank_words("".join(run)))
    return segments


def remove_punctuation(text: str) -> str:
    return "".join(char for char in text.lower().strip() if char not in PUNCTUATION)


def longest_common_substring(a: list, b: list) -> int:
    """Length of the longest run of consecutive items that `a` and `b` share."""
    best = 0
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0] * (len(b) + 1)
        for j, other in enumerate(b):
            if item == other:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def f1_score(answers: list[str], prediction: str) -> float:
    """Best F1 over the gold answers, from the longest common substring of segments."""
    pred_segments = mixed_segmentation(prediction, drop_punctuation=True)
    scores = []
    for answer in answers:
        gold_segments = mixed_segmentation(answer, drop_punctuation=True)
        common = longest_common_substring(gold_segments, pred_segments)
        if common == 0:
            scores.append(0)
            continue
        precision = 1.0 * common / len(pred_segments)
        recall = 1.0 * common / len(gold_segments)
        scores.append((2 * precision * recall) / (precision + recall))
    return max(scores)


def em_score(answers: list[str], prediction: str) -> int:
    prediction = remove_punctuation(prediction)
    return int(any(remove_punctuation(answer) == prediction for answer in answers))


def iter_questions(obj: Any, source: str = "data file") -> Iterator[tuple[str, list[str]]]:
    """(question id, gold answers) from a SQuAD-style CMRC file or the original CMRC format
    (a list of contexts with "qas", ids as "query_id", answers as strings or {"text": ...})."""
    articles = obj.get("data") if isinstance(obj, dict) else obj
    if not isinstance(articles, list):
        raise UserError(f"{source}: expected a CMRC 2018 JSON file (an object with a \"data\" list, "
                        "or a list of contexts)")
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs", [article]) if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise UserError(f"{source}: item {a} of the data: expected an object with \"paragraphs\" or \"qas\"")
        for paragraph in paragraphs:
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list):
                raise UserError(f"{source}: item {a} of the data: expected paragraphs with a \"qas\" list")
            for qa in qas:
                qid = (qa.get("id", qa.get("query_id")) if isinstance(qa, dict) else None)
                if not isinstance(qid, str):
                    raise UserError(f"{source}: item {a} of the data: expected each question to "
                                    "have a string \"id\" (or \"query_id\")")
                answers = qa.get("answers")
                texts = ([ans.get("text") if isinstance(ans, dict) else ans for ans in answers]
                         if isinstance(answers, list) else None)
                if not texts or not all(isinstance(text, str) for text in texts):
                    raise UserError(f"{source}: question {qid}: expected \"answers\" to be a non-empty "
                                    "list of strings or objects with a string \"text\"")
                yield qid, texts


def evaluate(data: Any, predictions: Mapping[str, str], source: str = "data file") -> dict:
    """{"AVERAGE", "F1", "EM"} in percent (floats), "TOTAL" questions and "SKIP" (unanswered)."""
    f1 = em = total = skipped = 0
    for qid, answers in iter_questions(data, source):
        total += 1
        if qid not in predictions:
            skipped += 1
            continue
        prediction = predictions[qid]
        f1 += f1_score(answers, prediction)
        em += em_score(answers, prediction)
    if total == 0:
        raise UserError(f"{source}: no questions to score")
    f1 = 100.0 * f1 / total
    em = 100.0 * em / total
    return {"AVERAGE": (em + f1) * 0.5, "F1": f1, "EM": em, "TOTAL": total, "SKIP": skipped}


def official_output(result: Mapping[str, Any], prediction_file: str) -> "collections.OrderedDict[str, Any]":
    """What cmrc2018_evaluate.py prints: the scores as "%.3f" strings and the predictions path."""
    return collections.OrderedDict([
        ("AVERAGE", "%.3f" % result["AVERAGE"]), ("F1", "%.3f" % result["F1"]),
        ("EM", "%.3f" % result["EM"]), ("TOTAL", result["TOTAL"]), ("SKIP", result["SKIP"]),
        ("FILE", prediction_file)])


def missing_ids(data: Any, predictions: Mapping[str, str], source: str = "data file") -> list[str]:
    return list(dict.fromkeys(qid for qid, _ in iter_questions(data, source) if qid not in predictions))
