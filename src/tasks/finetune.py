"""Fine-tuning glue shared by every task: the run config, batches from task MindRecord, the task
contract each task module fills in, and the task record a fine-tuned model directory carries."""
import json
import os
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, Iterator, Optional, TypeVar

import numpy as np
from mindspore import Tensor, nn
from tqdm import tqdm

from src.data.tasks.entity_features import ENTITY_COLUMNS
from src.data.tasks.task_records import task_batch_count, task_batches
from src.errors import UserError
from src.training.config import TrainConfig

TASK_FILE = "task.json"
_Options = TypeVar("_Options")


@dataclass
class FinetuneConfig(TrainConfig):
    """A fine-tuning run: the task, its data, the model directory to start from, evaluation."""

    task: str = ""                     # squad | ner | classification | race | open_entity | tacred | conll_spans
    dataset: str = ""                  # squad_v1, squad_v2, cmrc2018, conll2003, cluener, msra, cola, ...
    model_dir: str = ""
    data_dir: str = ""                 # training features from `create_data.py <task>`
    eval_file: Optional[str] = None    # the raw dev file, scored with the official metric
    num_train_epochs: Optional[float] = None  # when set, decides train_steps
    warmup_ratio: Optional[float] = None      # when set, warmup_steps = ratio * train_steps
    save_total_limit: Optional[int] = None    # PaddleNLP's name for save_checkpoint_num
    eval_batch_size: int = 32
    use_crf: bool = False
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0


class TaskSource:
    """This rank's training batches of a task folder, reshuffled each epoch from seed + epoch."""

    def __init__(self, folder: str, batch_size: int, seed: int, columns: list[str],
                 prepare: Callable[[Dict[str, np.ndarray]], tuple], rank: int = 0, world: int = 1):
        self.folder, self.batch_size, self.seed = folder, batch_size, seed
        self.columns, self.prepare = columns, prepare
        self.shards = dict(num_shards=world, shard_id=rank) if world > 1 else {}
        self.batches_per_epoch = task_batch_count(folder, batch_size, world)
        if self.batches_per_epoch == 0:
            raise UserError(f"{folder}: fewer features than one batch of {batch_size} per rank "
                            f"(world size {world})")

    def batches(self, epoch: int, skip: int) -> Iterator[tuple]:
        for batch in task_batches(self.folder, self.batch_size, self.columns, shuffle=True,
                                  seed=self.seed + epoch, skip=skip, drop_remainder=True,
                                  **self.shards):
            yield tuple(Tensor(column) for column in self.prepare(batch))


class Task:
    """What a task module defines: its head, its training columns and loss, its evaluation."""

    head: str = ""
    columns: tuple = ()

    def __init__(self, spec: Dict[str, Any]):
        self.spec = spec

    def model_overrides(self) -> Dict[str, Any]:
        """Config values the head needs (number of labels and their names, CRF)."""
        return {}

    def prepare(self, batch: Dict[str, np.ndarray]) -> tuple:
        """The loss function's inputs, from one batch of the training columns."""
        return tuple(batch[name] for name in self.columns)

    def loss_function(self, model: nn.Cell) -> Callable:
        raise NotImplementedError

    def evaluation(self, tokenizer, path: str, batch_size: int) -> "Evaluation":
        raise NotImplementedError


class Evaluation:
    """Prediction and scoring on one raw dev file, features built once and reused each time."""

    batch_size: int = 32
    _predictor: Optional["Predictor"] = None

    def predict(self, model: Any, inputs: tuple) -> list[np.ndarray]:
        """The model's outputs over all rows, through one compiled Predictor kept across calls."""
        if self._predictor is None or self._predictor.model is not model:
            self._predictor = Predictor(model, self.batch_size)
        return self._predictor(inputs)

    def __call__(self, model: nn.Cell) -> Dict[str, float]:
        raise NotImplementedError

    def write_predictions(self, folder: str) -> list[str]:
        raise NotImplementedError


class Predictor:
    """Runs a model over rows in batches of one fixed shape (the last one padded), so graph mode
    compiles once; returns each output concatenated over all rows. The model is a Cell, or an
    exported graph (src/deploy/runtime.py: `run` on numpy batches, its own static batch)."""

    def __init__(self, model: Any, batch_size: int):
        self.model = model
        self.batch_size = batch_size
        if isinstance(model, nn.Cell):
            import mindspore as ms

            compiled = ms.jit(model)
            self.forward = lambda batch: _as_arrays(compiled(*(Tensor(x) for x in batch)))
        else:
            self.forward = model.run
            self.batch_size = model.static_batch or batch_size

    def __call__(self, inputs: tuple) -> list[np.ndarray]:
        rows = len(inputs[0])
        outputs: list[list[np.ndarray]] = []
        for start in tqdm(range(0, rows, self.batch_size), desc="predicting", unit="batch",
                          disable=None, leave=False):
            batch = [_pad_rows(x[start:start + self.batch_size], self.batch_size) for x in inputs]
            kept = min(self.batch_size, rows - start)
            for index, value in enumerate(self.forward(batch)):
                if len(outputs) <= index:
                    outputs.append([])
                outputs[index].append(value[:kept])
        return [np.concatenate(parts) for parts in outputs]


def _as_arrays(out) -> list[np.ndarray]:
    return [value.asnumpy() for value in (out if isinstance(out, tuple) else (out,))]


def _pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """Repeat the last row until the batch has `rows` rows."""
    missing = rows - len(array)
    return array if missing <= 0 else np.concatenate([array, np.repeat(array[-1:], missing, 0)])


def task_spec(config: FinetuneConfig, manifest: Dict[str, Any]) -> Dict[str, Any]:
    """What evaluating a fine-tuned model needs later: task, dataset, labels, feature options."""
    return {"task": config.task, "dataset": config.dataset or manifest.get("dataset", ""),
            "labels": manifest.get("labels"), "regression": manifest.get("regression", False),
            "version_2_with_negative": manifest.get("version_2_with_negative", False),
            "options": manifest.get("options", {}), "use_crf": config.use_crf,
            # LUKE features with entity columns: the model takes its seven inputs
            "entity_inputs": all(name in manifest.get("columns", {}) for name in ENTITY_COLUMNS),
            "entities": manifest.get("entities"),  # how entity-linked SQuAD features were linked
            "n_best_size": config.n_best_size,
            "max_answer_length": config.max_answer_length,
            "null_score_diff_threshold": config.null_score_diff_threshold}


def recorded_options(cls: type[_Options], recorded: Dict[str, Any]) -> _Options:
    """The feature options the training data was built with, so evaluation builds features alike."""
    names = {item.name for item in fields(cls)}
    return cls(**{key: value for key, value in recorded.items() if key in names})


def labelled(values: np.ndarray) -> np.ndarray:
    """Rows that carry a gold label (unlabeled ones hold -1)."""
    return values >= 0


def read_task_spec(model_dir: str) -> Dict[str, Any]:
    """The task record of a fine-tuned model directory."""
    path = os.path.join(model_dir, TASK_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{model_dir}: no {TASK_FILE}; expected a checkpoint of run_finetune.py "
                        "(output_dir/model_best or model_last), which records its task")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def steps_for_epochs(epochs: float, batches_per_epoch: int, accumulation_steps: int) -> int:
    """Optimizer steps that cover `epochs` passes over this rank's batches."""
    return max(1, int(np.ceil(epochs * batches_per_epoch / accumulation_steps)))
