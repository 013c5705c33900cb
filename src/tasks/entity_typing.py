"""Open Entity typing with LUKE: entity_classification head over the [MASK] entity, multi-label BCE,
micro precision / recall / F1 at logit > 0 (the LUKE repository's numbers)."""
import json
from typing import Dict

import numpy as np
from mindspore import nn

from src.data.tasks.entity_features import EntityTaskOptions
from src.data.tasks.open_entity import build_typing_features, read_open_entity
from src.files import write_text_atomic
from src.metrics.entities import typing_scores
from src.tasks.entity_task import EntityEvaluation, EntityTask
from src.training.losses import multi_label_loss


class TypingEvaluation(EntityEvaluation):
    """Mentions of a raw dev file: predicted types (logit > 0), micro scores over the labelled ones."""

    def build(self, tokenizer, path: str, options: EntityTaskOptions,
              label2id: Dict[str, int]) -> Dict[str, np.ndarray]:
        self.examples = read_open_entity(path)
        self.scores = np.zeros((0, len(label2id)))
        return build_typing_features(self.examples, tokenizer, options, label2id, "eval").columns

    def __call__(self, model: nn.Cell) -> Dict[str, float]:
        self.scores = self.logits(model)
        gold = self.columns["label_ids"]
        rows = gold[:, 0] >= 0
        if not rows.any():
            return {}
        return {f"eval_{key}": float(value) for key, value in typing_scores(self.scores[rows], gold[rows]).items()}

    def write_predictions(self, folder: str) -> list[str]:
        """predictions.jsonl: per mention its sentence, span and predicted types."""
        lines = []
        for row, index in enumerate(self.columns["example_index"]):
            example = self.examples[index]
            types = [self.labels[i] for i in np.flatnonzero(self.scores[row] > 0)]
            lines.append(json.dumps({"sent": example.text, "start": example.span[0], "end": example.span[1],
                                     "predicted": types}, ensure_ascii=False))
        return [write_text_atomic(f"{folder}/predictions.jsonl", "\n".join(lines) + "\n")]


class EntityTyping(EntityTask):
    head = "entity_classification"
    objective = staticmethod(multi_label_loss)
    evaluation_class = TypingEvaluation
