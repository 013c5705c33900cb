"""TACRED relation classification with LUKE: entity_pair_classification head over the subject and object
entities, cross entropy, micro F1 without no_relation (the LUKE repository's numbers)."""
import json
from typing import Dict

import numpy as np
from mindspore import nn

from src.data.tasks.entity_features import EntityTaskOptions
from src.data.tasks.tacred import NO_RELATION, build_relation_features, read_tacred
from src.files import write_text_atomic
from src.metrics.entities import relation_scores
from src.tasks.entity_task import EntityEvaluation, EntityTask
from src.tasks.finetune import labelled
from src.training.losses import cross_entropy


class RelationEvaluation(EntityEvaluation):
    """Sentences of a raw dev file: predicted relation ids, micro scores without no_relation."""

    def build(self, tokenizer, path: str, options: EntityTaskOptions,
              label2id: Dict[str, int]) -> Dict[str, np.ndarray]:
        self.examples = read_tacred(path)
        self.predictions = np.zeros(0, dtype=np.int64)
        return build_relation_features(self.examples, tokenizer, options, label2id, "eval").columns

    def __call__(self, model: nn.Cell) -> Dict[str, float]:
        self.predictions = self.logits(model).argmax(-1)
        gold = self.columns["label_ids"]
        rows = labelled(gold)
        if not rows.any():
            return {}
        scores = relation_scores(self.predictions[rows], gold[rows], self.labels.index(NO_RELATION))
        return {f"eval_{key}": float(value) for key, value in scores.items()}

    def write_predictions(self, folder: str) -> list[str]:
        """predictions.jsonl: per sentence its text and predicted relation."""
        rows = zip(self.columns["example_index"], self.predictions)
        lines = [json.dumps({"text": self.examples[index].text, "predicted": self.labels[int(guess)]},
                            ensure_ascii=False) for index, guess in rows]
        return [write_text_atomic(f"{folder}/predictions.jsonl", "\n".join(lines) + "\n")]


class RelationClassification(EntityTask):
    head = "entity_pair_classification"
    objective = staticmethod(cross_entropy)
    evaluation_class = RelationEvaluation
