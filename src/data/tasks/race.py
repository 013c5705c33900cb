"""RACE multiple-choice data: article JSON files (a file or a folder walked recursively) -> (N, 4, L) features.

Each question makes four inputs (article, question + " " + option); a fill-in-the-blank question (one with
"_") gets the option put in place of each "_" instead, as the XLNet / ALBERT RACE baselines do. The article
is what gets truncated: the question+option is kept whole unless it alone takes more than half of the
room, and then both are cut longest-first. Each article is tokenized once for all its questions.
"""
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from src.data.tasks.features import (IGNORE_LABEL, FeatureSet, Layout, SkipRecord, check_budget, check_labelled,
                               check_split, chunks, concat_columns, pack, resolve_labels, special_layout, token_ids,
                               write_features)
from src.data.json_files import load_json
from src.data.tokenization import Tokenizer, load_tokenizer
from src.errors import UserError

ANSWERS = ("A", "B", "C", "D")
ARTICLE_CHUNK = 256
_SUFFIXES = (".txt", ".json")


@dataclass(frozen=True)
class RaceOptions:
    """How RACE features are made (recorded in the manifest)."""

    max_seq_length: int = 512
    do_lower_case: bool | None = None

    def check(self) -> None:
        """Reject option values that cannot make features, naming the option."""
        if self.max_seq_length < 5:
            raise UserError(f"--max_seq_length {self.max_seq_length}: expected at least 5")


@dataclass(frozen=True)
class RaceQuestion:
    """One question: its text, four options, answer index (None if unlabeled) and origin."""

    question: str
    options: tuple[str, ...]
    label: int | None
    origin: str


@dataclass(frozen=True)
class RaceArticle:
    """One article and its questions."""

    article: str
    questions: list[RaceQuestion]
    origin: str


def race_files(path: str | os.PathLike[str]) -> list[Path]:
    """The input file, or every .txt/.json file under a folder (recursively, sorted, hidden ones left out)."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise UserError(f"{path}: no such file or folder; expected RACE JSON files (e.g. RACE/train)")
    files = sorted(file for file in root.rglob("*") if file.is_file() and file.suffix in _SUFFIXES
                   and not any(part.startswith(".") for part in file.relative_to(root).parts))
    if not files:
        raise UserError(f"{path}: no .txt or .json files in it; expected RACE article files (RACE/train/high/*.txt)")
    return files


def read_race(path: str | os.PathLike[str], skipped: Counter | None = None) -> list[RaceArticle]:
    """Articles of a RACE file or folder; a file holds one article object (or a list of them)."""
    skipped = Counter() if skipped is None else skipped
    articles = []
    for file in race_files(path):
        loaded = load_json(file)
        items = loaded if isinstance(loaded, list) else [loaded]
        for number, item in enumerate(items, 1):
            origin = f"{file}" if len(items) == 1 else f"{file}: article {number}"
            articles.append(_article(item, origin, skipped))
    return articles


def _article(item: object, origin: str, skipped: Counter) -> RaceArticle:
    """One article object, checked: article text, and questions, options and answers of matching lengths."""
    if not isinstance(item, dict) or not isinstance(item.get("article"), str):
        raise UserError(f"{origin}: expected a RACE object with \"article\", \"questions\", \"options\", \"answers\"")
    questions, options = item.get("questions"), item.get("options")
    answers = item.get("answers")
    if not isinstance(questions, list) or not isinstance(options, list) or len(questions) != len(options):
        raise UserError(f"{origin}: \"questions\" and \"options\" must be lists of the same length")
    if answers is not None and (not isinstance(answers, list) or len(answers) != len(questions)):
        raise UserError(f"{origin}: \"answers\" must be a list with one answer per question")
    parsed = []
    for index, (question, choices) in enumerate(zip(questions, options)):
        where = f"{origin}: question {index + 1}"
        try:
            parsed.append(RaceQuestion(_question(question, where), _options(choices, where),
                                       None if answers is None else _answer(answers[index], where), where))
        except SkipRecord as skip:
            skipped[skip.reason] += 1
    return RaceArticle(item["article"], parsed, origin)


def _question(question: object, origin: str) -> str:
    """A question, checked to be a string."""
    if not isinstance(question, str):
        raise UserError(f"{origin}: the question is a {type(question).__name__}; expected a string")
    return question


def _options(choices: object, origin: str) -> tuple[str, ...]:
    """The four option strings; any other number of options is skipped (the model scores exactly four)."""
    if not isinstance(choices, list) or not all(isinstance(choice, str) for choice in choices):
        raise UserError(f"{origin}: options must be a list of strings")
    if len(choices) != len(ANSWERS):
        raise SkipRecord("not_four_options")
    return tuple(choices)


def _answer(answer: object, origin: str) -> int:
    """Index 0..3 of an answer letter."""
    if answer not in ANSWERS:
        raise UserError(f"{origin}: answer {answer!r}; expected one of {', '.join(ANSWERS)}")
    return ANSWERS.index(answer)


def choice_text(question: str, option: str) -> str:
    """The second segment for one option: the option in place of a blank "_", else question + " " + option."""
    return question.replace("_", option) if "_" in question else f"{question} {option}"


def kept_lengths(article: int, choice: int, budget: int) -> tuple[int, int]:
    """(article, question+option) lengths kept: the article gives way, unless the choice needs over half."""
    kept_choice = min(choice, max(budget - article, budget // 2))
    return min(article, budget - kept_choice), kept_choice


def build_race_features(articles: Sequence[RaceArticle], tokenizer: Tokenizer, options: RaceOptions) -> FeatureSet:
    """Columns input_ids, input_mask, segment_ids (N, 4, L), label_ids and example_index (N,)."""
    layout = special_layout(tokenizer)
    budget = check_budget(options.max_seq_length, layout, is_pair=True)
    built = FeatureSet(columns={})
    parts: list[dict[str, np.ndarray]] = []
    with tqdm(total=len(articles), desc="race features", unit="article", disable=None) as bar:
        for batch in chunks(articles, ARTICLE_CHUNK):
            questions = [(article_index, question) for article_index, article in enumerate(batch)
                         for question in article.questions]
            if questions:
                parts.append(_chunk_columns(batch, questions, tokenizer, layout, budget, options, built))
            built.counts.update(articles=len(batch), questions=len(questions))
            bar.update(len(batch))
    length = options.max_seq_length
    empty = {name: values.reshape(0, len(ANSWERS), length) for name, values in pack([], length, 0).items()}
    built.columns = concat_columns(parts, {**empty, "label_ids": np.zeros(0, dtype=np.int32)})
    built.columns["example_index"] = np.arange(len(built.columns["label_ids"]), dtype=np.int32)
    return built


def _chunk_columns(batch: Sequence[RaceArticle], questions: list[tuple[int, RaceQuestion]], tokenizer: Tokenizer,
                   layout: Layout, budget: int, options: RaceOptions, built: FeatureSet) -> dict[str, np.ndarray]:
    """Features of one chunk of articles: each article tokenized once, four rows per question."""
    article_ids = token_ids(tokenizer, [article.article for article in batch])
    choice_ids = token_ids(tokenizer, [choice_text(question.question, option)
                                       for _, question in questions for option in question.options])
    rows = []
    for position, (article_index, _) in enumerate(questions):
        article = article_ids[article_index]
        for choice in choice_ids[position * len(ANSWERS):(position + 1) * len(ANSWERS)]:
            keep_article, keep_choice = kept_lengths(len(article), len(choice), budget)
            built.handled.update(article_truncated=int(keep_article < len(article)),
                                 question_option_truncated=int(keep_choice < len(choice)))
            rows.append(layout.assemble(article[:keep_article], choice[:keep_choice]))
    columns = {name: values.reshape(len(questions), len(ANSWERS), options.max_seq_length)
               for name, values in pack(rows, options.max_seq_length, tokenizer.pad_token_id).items()}
    labels = [IGNORE_LABEL if question.label is None else question.label for _, question in questions]
    built.handled["unlabeled_questions"] += labels.count(IGNORE_LABEL)
    return {**columns, "label_ids": np.array(labels, dtype=np.int32)}


def create_race_data(input_path: str, model_dir: str, output: str, options: RaceOptions, split: str = "train",
                     overwrite: bool = False, label_file: str | Sequence[str] | None = None) -> dict:
    """Read RACE articles, build four-choice features with the model's tokenizer and write them with a manifest."""
    started = time.monotonic()
    options.check()
    check_split(split)
    skipped: Counter = Counter()
    articles = read_race(input_path, skipped)
    check_labelled(split, (question.origin for article in articles for question in article.questions
                           if question.label is None))
    labels, source = resolve_labels(split, label_file, ANSWERS)
    if tuple(labels) != ANSWERS:
        raise UserError(f"{source}: labels {labels} are not RACE's {list(ANSWERS)}")
    tokenizer = load_tokenizer(model_dir, options.do_lower_case)
    built = build_race_features(articles, tokenizer, options)
    built.skipped.update(skipped)
    return write_features(output, built, task="race", dataset="race", split=split, options=options, labels=labels,
                          label_source=source, input_path=input_path, tokenizer=tokenizer, model_dir=model_dir,
                          overwrite=overwrite, started=started)
