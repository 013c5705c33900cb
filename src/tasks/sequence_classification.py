"""GLUE / CLUE / ChnSentiCorp: sentence (pair) classification, or regression for STS-B."""
from collections import Counter
from typing import Any, Callable, Dict

import numpy as np
from mindspore import nn

from src.data.tasks.classification import ClassificationOptions, build_classification_features, \
    read_classification_file
from src.files import write_text_atomic
from src.metrics.classification import classification_scores
from src.tasks.finetune import Evaluation, Task, labelled, recorded_options
from src.training.losses import cross_entropy, mse_loss

INPUTS = ("input_ids", "input_mask", "segment_ids")


class SequenceClassification(Task):
    head = "sequence_classification"
    columns = INPUTS + ("label_ids",)

    def model_overrides(self) -> Dict[str, Any]:
        if self.spec["regression"]:
            return {"num_labels": 1, "label_names": None}
        return {"num_labels": len(self.spec["labels"]), "label_names": list(self.spec["labels"])}

    def loss_function(self, model: nn.Cell) -> Callable:
        objective = mse_loss if self.spec["regression"] else cross_entropy

        def loss(input_ids, input_mask, segment_ids, label_ids):
            return objective(model(input_ids, input_mask, segment_ids), label_ids)
        return loss

    def evaluation(self, tokenizer, path: str, batch_size: int) -> "ClassificationEvaluation":
        return ClassificationEvaluation(self.spec, tokenizer, path, batch_size)


class ClassificationEvaluation(Evaluation):
    """Features of a raw dev file built once; each call predicts and scores the labelled rows."""

    def __init__(self, spec: Dict[str, Any], tokenizer, path: str, batch_size: int):
        self.spec, self.batch_size = spec, batch_size
        options = recorded_options(ClassificationOptions, spec["options"])
        examples = read_classification_file(path, options.dataset, Counter())
        label2id = {label: index for index, label in enumerate(spec["labels"] or [])}
        self.columns = build_classification_features(examples, tokenizer, options, label2id).columns
        self.predictions = np.zeros(0)

    def __call__(self, model: nn.Cell) -> Dict[str, float]:
        (outputs,) = self.predict(model, tuple(self.columns[name] for name in INPUTS))
        regression = self.spec["regression"]
        self.predictions = outputs.reshape(-1) if regression else outputs.argmax(-1)
        gold = self.columns["label_ids"]
        rows = np.ones(len(gold), bool) if regression else labelled(gold)
        if not rows.any():
            return {}
        scores = classification_scores(self.spec["dataset"], self.predictions[rows], gold[rows])
        return {f"eval_{key}": float(value) for key, value in scores.items()}

    def write_predictions(self, folder: str) -> list[str]:
        """predictions.tsv: index and predicted label (or score), as GLUE/CLUE submissions list them."""
        names = self.spec["labels"]
        values = [f"{value:.6f}" if self.spec["regression"] else names[value] for value in self.predictions]
        lines = ["index\tprediction"] + [f"{index}\t{value}" for index, value in enumerate(values)]
        return [write_text_atomic(f"{folder}/predictions.tsv", "\n".join(lines) + "\n")]
