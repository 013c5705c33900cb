"""RACE: one score per option over (article, question + option) pairs; accuracy."""
from collections import Counter
from typing import Any, Callable, Dict

import numpy as np
from mindspore import nn

from src.data.tasks.race import ANSWERS, RaceOptions, build_race_features, read_race
from src.files import write_text_atomic
from src.metrics.classification import accuracy
from src.tasks.finetune import Evaluation, Task, labelled, recorded_options
from src.training.losses import cross_entropy

INPUTS = ("input_ids", "input_mask", "segment_ids")


class MultipleChoice(Task):
    head = "multiple_choice"
    columns = INPUTS + ("label_ids",)

    def loss_function(self, model: nn.Cell) -> Callable:
        def loss(input_ids, input_mask, segment_ids, label_ids):
            return cross_entropy(model(input_ids, input_mask, segment_ids), label_ids)
        return loss

    def evaluation(self, tokenizer, path: str, batch_size: int) -> "RaceEvaluation":
        return RaceEvaluation(self.spec, tokenizer, path, batch_size)


class RaceEvaluation(Evaluation):
    """Four-choice features of a raw RACE file or folder; each call predicts and scores accuracy."""

    def __init__(self, spec: Dict[str, Any], tokenizer, path: str, batch_size: int):
        self.batch_size = batch_size
        articles = read_race(path, Counter())
        self.origins = [question.origin for article in articles for question in article.questions]
        options = recorded_options(RaceOptions, spec["options"])
        self.columns = build_race_features(articles, tokenizer, options).columns
        self.predictions = np.zeros(0, np.int64)

    def __call__(self, model: nn.Cell) -> Dict[str, float]:
        (scores,) = self.predict(model, tuple(self.columns[name] for name in INPUTS))
        self.predictions = scores.argmax(-1)
        gold = self.columns["label_ids"]
        rows = labelled(gold)
        return {"eval_accuracy": accuracy(self.predictions[rows], gold[rows])} if rows.any() else {}

    def write_predictions(self, folder: str) -> list[str]:
        """predictions.tsv: each question's origin (file and index) and the predicted letter."""
        lines = ["question\tanswer"] + [f"{origin}\t{ANSWERS[choice]}"
                                        for origin, choice in zip(self.origins, self.predictions)]
        return [write_text_atomic(f"{folder}/predictions.tsv", "\n".join(lines) + "\n")]
