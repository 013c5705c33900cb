"""SQuAD v1.1 / v2.0 and CMRC2018 (same JSON layout): examples, options and the reader.

The feature builder lives in `squad_features.py`, the MindRecord builder in `squad_records.py`,
postprocessing (n-best, null odds, predictions files) in `squad_postprocess.py`.
"""
import os
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from src.data.json_files import load_json
from src.errors import UserError

_LAYOUT = "SQuAD layout: {data: [{title, paragraphs: [{context, qas: [{id, question, answers, is_impossible}]}]}]}"


@dataclass(frozen=True)
class SquadExample:
    """One question on one context, with its (text, answer_start) answers.

    answer_start is -1 where the text was found neither at its answer_start nor anywhere in the context
    (kept for evaluation, unused in training).
    """

    id: str
    title: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]
    is_impossible: bool

    def training_answer(self) -> tuple[int, int] | None:
        """Character span [start, end) of the first usable answer, whitespace trimmed; None if there is none."""
        for text, start in self.answers:
            stripped = text.strip()
            if start >= 0 and stripped:
                begin = start + len(text) - len(text.lstrip())
                return begin, begin + len(stripped)
        return None


@dataclass(frozen=True)
class SquadOptions:
    """How examples become features (the BERT seed's names; doc_stride is the step between windows)."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64

    def check(self, special_tokens: int) -> None:
        """Reject options that cannot make windows covering every context token, naming the option."""
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise UserError(f"--{name} {value!r}: expected a positive whole number")
        room = self.max_seq_length - self.max_query_length - special_tokens
        if room < 1:
            raise UserError(f"--max_seq_length {self.max_seq_length}: leaves no room for the context after a "
                            f"question of --max_query_length {self.max_query_length} and {special_tokens} "
                            "special tokens")
        if self.doc_stride > room:
            raise UserError(f"--doc_stride {self.doc_stride}: larger than the context room of a window "
                            f"({self.max_seq_length} - {self.max_query_length} - {special_tokens} special tokens "
                            f"= {room}), so windows would skip context tokens; expected at most {room}")


def read_squad(path: str | os.PathLike[str], data: Any = None) -> tuple[list[SquadExample], Counter]:
    """Read a SQuAD v1.1/v2.0 or CMRC2018 file into examples, with a Counter of what was skipped or fixed.

    Questions on an empty/whitespace-only context (`empty_context`), empty questions (`empty_question`)
    and repeated ids (`duplicate_id`) are skipped. An answer whose text is not at its answer_start is
    moved to the occurrence of its text nearest to answer_start (`answer_realigned`; CMRC2018 has
    approximate starts); if the text is nowhere in the context it keeps its text with start -1
    (`answer_misaligned`): scored in evaluation, unused in training. Structural problems (a missing key,
    a wrong type) are UserErrors naming the file and the JSON location. `data`: the file already parsed.
    """
    data = load_json(path) if data is None else data
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise UserError(f"{path}: top level has no 'data' list; expected the {_LAYOUT}")
    examples: list[SquadExample] = []
    counts: Counter = Counter()
    seen: set[str] = set()
    for i, article in enumerate(data["data"]):
        where = f"data[{i}]"
        _require(isinstance(article, dict), path, where, "an object with 'paragraphs'")
        title = article.get("title", "")
        _require(isinstance(title, str), path, f"{where}.title", "a string")
        for j, paragraph in enumerate(_get(article, "paragraphs", list, path, where)):
            examples.extend(_read_paragraph(paragraph, title, path, f"{where}.paragraphs[{j}]", seen, counts))
    return examples, counts


def _read_paragraph(paragraph: Any, title: str, path: str | os.PathLike[str], where: str, seen: set[str],
                    counts: Counter) -> list[SquadExample]:
    """The examples of one paragraph (its context and its questions)."""
    _require(isinstance(paragraph, dict), path, where, "an object with 'context' and 'qas'")
    context = _get(paragraph, "context", str, path, where)
    examples = []
    for k, qa in enumerate(_get(paragraph, "qas", list, path, where)):
        qid, question, is_impossible, answers = _read_question(qa, path, f"{where}.qas[{k}]")
        if not context.strip():
            counts["empty_context"] += 1
        elif not question:
            counts["empty_question"] += 1
        elif qid in seen:
            counts["duplicate_id"] += 1
        else:
            seen.add(qid)
            aligned = tuple((text, _align(text, start, context, counts)) for text, start in answers)
            examples.append(SquadExample(qid, title, question, context, aligned, is_impossible))
    return examples


def _read_question(qa: Any, path: str | os.PathLike[str],
                   where: str) -> tuple[str, str, bool, list[tuple[str, int]]]:
    """One question's id, stripped text, is_impossible flag and (text, answer_start) answers, type-checked."""
    _require(isinstance(qa, dict), path, where, "an object with 'id', 'question' and 'answers'")
    qid = _get(qa, "id", (str, int), path, where)
    question = _get(qa, "question", str, path, where)
    is_impossible = qa.get("is_impossible", False)
    _require(isinstance(is_impossible, bool), path, f"{where}.is_impossible", "true or false")
    answers = qa.get("answers", [])
    _require(isinstance(answers, list), path, f"{where}.answers", "a list of {text, answer_start}")
    pairs = []
    for n, answer in enumerate(answers):
        place = f"{where}.answers[{n}]"
        _require(isinstance(answer, dict), path, place, "an object with 'text' and 'answer_start'")
        pairs.append((_get(answer, "text", str, path, place), _get(answer, "answer_start", int, path, place)))
    return str(qid), question.strip(), is_impossible, pairs


def _align(text: str, start: int, context: str, counts: Counter) -> int:
    """answer_start if the text is there, else the nearest occurrence of the text, else -1 (counted)."""
    if text.strip() and start >= 0 and context.startswith(text, start):
        return start
    found = _occurrences(context, text) if text.strip() else []
    if not found:
        counts["answer_misaligned"] += 1
        return -1
    counts["answer_realigned"] += 1
    return min(found, key=lambda position: abs(position - start))


def _occurrences(context: str, text: str) -> list[int]:
    """Every start position of text in context."""
    positions, position = [], context.find(text)
    while position >= 0:
        positions.append(position)
        position = context.find(text, position + 1)
    return positions


def _get(obj: dict, key: str, kind: type | tuple[type, ...], path: str | os.PathLike[str], where: str) -> Any:
    """obj[key] checked to be of the expected type; otherwise a UserError naming the file and location."""
    expected = {str: "a string", int: "a whole number", list: "a list"}.get(kind, "a string or number")
    if key not in obj:
        raise UserError(f"{path}: {where}: missing {key!r} (expected {expected}; {_LAYOUT})")
    value = obj[key]
    _require(isinstance(value, kind) and not isinstance(value, bool), path, f"{where}.{key}", expected)
    return value


def _require(ok: bool, path: str | os.PathLike[str], where: str, expected: str) -> None:
    """Raise a UserError naming the file and JSON location unless ok."""
    if not ok:
        raise UserError(f"{path}: {where}: expected {expected}")
