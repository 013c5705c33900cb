"""What the LUKE entity tasks' glue shares: the seven model inputs by column, the head's loss over them,
and an evaluation that builds a raw dev file's features once with the training data's options."""
from typing import Any, Callable, Dict

import numpy as np
from mindspore import nn

from src.data.tasks.entity_features import EntityTaskOptions
from src.tasks.finetune import Evaluation, Task, recorded_options

INPUTS = ("input_ids", "input_mask", "segment_ids", "entity_ids", "entity_attention_mask", "entity_segment_ids",
          "entity_position_ids")  # the order LUKE's model takes them (DESIGN.md)


class EntityTask(Task):
    """An entity head over the seven inputs, trained on label_ids with the subclass's objective."""

    columns = INPUTS + ("label_ids",)
    objective: Callable  # (logits, label_ids) -> loss, set by each task
    evaluation_class: type  # its EntityEvaluation

    def model_overrides(self) -> Dict[str, Any]:
        return {"num_labels": len(self.spec["labels"]), "label_names": list(self.spec["labels"])}

    def loss_function(self, model: nn.Cell) -> Callable:
        objective = self.objective

        def loss(input_ids, input_mask, segment_ids, entity_ids, entity_mask, entity_segments, entity_positions,
                 label_ids):
            logits = model(input_ids, input_mask, segment_ids, entity_ids, entity_mask, entity_segments,
                           entity_positions)
            return objective(logits, label_ids)
        return loss

    def evaluation(self, tokenizer, path: str, batch_size: int) -> Evaluation:
        return self.evaluation_class(self.spec, tokenizer, path, batch_size)


class EntityEvaluation(Evaluation):
    """Features of a raw dev file built once (subclasses read and build); predictions of the model's logits."""

    def __init__(self, spec: Dict[str, Any], tokenizer, path: str, batch_size: int):
        self.spec, self.batch_size = spec, batch_size
        self.labels = list(spec["labels"])
        options = recorded_options(EntityTaskOptions, spec["options"])
        self.columns = self.build(tokenizer, path, options, {label: i for i, label in enumerate(self.labels)})

    def build(self, tokenizer, path: str, options: EntityTaskOptions,
              label2id: Dict[str, int]) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def logits(self, model: nn.Cell) -> np.ndarray:
        """The model's logits over every row."""
        (logits,) = self.predict(model, tuple(self.columns[name] for name in INPUTS))
        return logits
