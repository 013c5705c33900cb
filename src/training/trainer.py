"""The training loop shared by pretraining and fine-tuning.

It owns the order of things: resume from model_last, then per step set the dropout key,
feed accumulation_steps micro-batches, update, log, evaluate and checkpoint. Only rank 0
writes; every rank resumes from the same checkpoint and reads its own shard of the data.
"""
import logging
import os
import time
from dataclasses import asdict
from typing import Callable, Dict, Iterator, Optional, Protocol

import numpy as np
from mindspore import nn
from tqdm import tqdm

from src.config import write_yaml_atomic
from src.errors import UserError
from src.models.weights import find_weights, load_into, read_weights
from src.training.checkpoints import BEST, check_space, check_writable, checkpoint_size, \
    last_checkpoint, load_checkpoint, save_checkpoint
from src.training.config import TrainConfig
from src.training.distributed import synchronize
from src.training.freezing import trained_params
from src.training.metrics_log import MetricsLog
from src.training.optimizers import build_optimizer
from src.training.schedules import learning_rates
from src.training.step import TrainStep

logger = logging.getLogger(__name__)


class BatchSource(Protocol):
    """Micro-batches of one rank: `batches(epoch, skip)` starts `skip` batches into the epoch."""

    batches_per_epoch: int

    def batches(self, epoch: int, skip: int) -> Iterator[tuple]: ...


class Trainer:
    """Trains `model` with `loss_fn(*batch)` on `source`, resumable at any step."""

    def __init__(self, model: nn.Cell, loss_fn: Callable, source: BatchSource,
                 config: TrainConfig, rank: int = 0, world: int = 1,
                 tokenizer_dir: Optional[str] = None,
                 evaluate: Optional[Callable[[], Dict[str, float]]] = None,
                 tokens_per_batch: Optional[Callable[[tuple], int]] = None,
                 model_files: Optional[Dict[str, str]] = None,
                 on_checkpoint: Optional[Callable[[str], None]] = None):
        self.model, self.source, self.config = model, source, config
        self.rank, self.world = rank, world
        self.tokenizer_dir, self.evaluate = tokenizer_dir, evaluate
        self.model_files = model_files  # extra files each checkpoint carries (a task record)
        self.on_checkpoint = on_checkpoint  # called with each checkpoint written (ModelArts uploads it)
        self.tokens_per_batch = tokens_per_batch or (lambda batch: int(np.prod(batch[0].shape)))
        lrs = learning_rates(config.train_steps, config.learning_rate, config.warmup_steps,
                             config.lr_decay, config.power, config.end_learning_rate)
        self.optimizer = build_optimizer(trained_params(model, config.freeze),
                                         config.optimizer, lrs,
                                         config.weight_decay, config.beta1, config.beta2,
                                         config.eps)
        reducer = None
        if world > 1:
            reducer = nn.DistributedGradReducer(self.optimizer.parameters, mean=True, degree=world)
        self.step_fn = TrainStep(loss_fn, self.optimizer, config, reducer)
        self.lrs = lrs
        self.state = {"step": 0, "micro_batches": 0, "skipped_steps": 0,
                      "best_metric": None, "best_step": None}
        self.waited_s = self.stepped_s = 0.0  # since the last metrics line

    @property
    def extra_state(self):
        scale = self.step_fn.loss_scale
        return [scale.scale, scale.good_steps]

    def resume(self) -> None:
        """Continue from output_dir/model_last when a previous run left one."""
        folder = last_checkpoint(self.config.output_dir)
        if folder:
            self.state = {**self.state, **load_checkpoint(folder, self.model, self.optimizer,
                                                          self.extra_state)}
            logger.info("resumed from %s at step %d", folder, self.state["step"])

    def _micro_batches(self) -> Iterator[tuple]:
        per_epoch = self.source.batches_per_epoch
        consumed = self.state["micro_batches"]
        epoch, skip = divmod(consumed, per_epoch)
        while True:
            for batch in self.source.batches(epoch, skip):
                yield batch
            epoch, skip = epoch + 1, 0

    def train(self, resume: bool = True) -> Dict:
        """Run to train_steps; returns the final trainer state."""
        config = self.config
        if self.rank == 0:
            check_writable(config.output_dir)
            check_space(config.output_dir, checkpoint_size(self.model, self.optimizer))
            write_yaml_atomic(asdict(config), os.path.join(config.output_dir, "run_config.yaml"))
        if resume:
            self.resume()
        log = MetricsLog(config.output_dir, enabled=self.rank == 0,
                         after_step=self.state["step"])
        batches = self._micro_batches()
        self.model.set_train(True)
        bar = tqdm(total=config.train_steps, initial=self.state["step"], unit="step",
                   disable=self.rank != 0, dynamic_ncols=True)
        try:
            while self.state["step"] < config.train_steps:
                self._one_step(batches, log, bar)
        finally:
            bar.close()  # before any error message, so that message is the last line
        log.plot()
        synchronize(self.world)
        if config.load_best_model_at_end and self.state["best_step"] is not None:
            self._load_best()
        return self.state

    def _load_best(self) -> None:
        """Put the best checkpoint's weights into the model (every rank reads the same folder)."""
        folder = last_checkpoint(self.config.output_dir, BEST)
        path = find_weights(folder)
        load_into(self.model, read_weights(path), path)
        logger.info("loaded the best checkpoint %s (%s = %s)", folder,
                    self.config.metric_for_best_model, self.state["best_metric"])

    def _one_step(self, batches: Iterator[tuple], log: MetricsLog, bar: tqdm) -> None:
        config, state = self.config, self.state
        self.model.stream.set_key(config.seed, state["step"], self.rank)
        start = time.perf_counter()
        micro = [next(batches) for _ in range(config.accumulation_steps)]
        fed = time.perf_counter()
        loss, applied = self.step_fn.run(micro)
        elapsed = time.perf_counter() - fed
        self.waited_s += fed - start
        self.stepped_s += elapsed
        state["step"] += 1
        state["micro_batches"] += len(micro)
        state["skipped_steps"] += 0 if applied else 1
        tokens = sum(self.tokens_per_batch(b) for b in micro) * self.world
        applied_steps = int(self.optimizer.global_step.asnumpy()[0])
        lr = float(self.lrs[min(max(applied_steps - 1, 0), len(self.lrs) - 1)])
        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens / elapsed:.0f}")
        bar.update(1)
        step = state["step"]
        if step % config.logging_steps == 0 or step == config.train_steps:
            # the share of the time the step waited for the data pipeline (0: never starved)
            data_wait = self.waited_s / (self.waited_s + self.stepped_s)
            log.write({"step": step, "loss": loss, "lr": lr, "tokens_per_s": tokens / elapsed,
                       "data_wait_share": data_wait,
                       "loss_scale": float(self.step_fn.loss_scale.scale.asnumpy()),
                       "skipped_steps": state["skipped_steps"]})
            self.waited_s = self.stepped_s = 0.0
        improved = False
        if self.evaluate and ((config.eval_steps and step % config.eval_steps == 0)
                              or step == config.train_steps):
            self.model.set_train(False)
            metrics = self.evaluate()
            log.write(dict({"step": step}, **metrics))
            improved = self._track_best(metrics)
            self.model.set_train(True)
        if improved or step % config.save_checkpoint_steps == 0 or step == config.train_steps:
            self._save(improved)

    def _track_best(self, metrics: Dict[str, float]) -> bool:
        """Record the metric_for_best_model value; True when it beats the best so far."""
        name = self.config.metric_for_best_model
        if not name:
            return False
        key = name if name in metrics else f"eval_{name}"
        if key not in metrics:
            raise UserError(f"metric_for_best_model {name!r}: evaluation gives "
                            f"{', '.join(sorted(metrics))}")
        value, best = float(metrics[key]), self.state["best_metric"]
        better = best is None or (value > best if self.config.greater_is_better else value < best)
        if better:
            self.state["best_metric"], self.state["best_step"] = value, self.state["step"]
        return better

    def _save(self, best: bool = False) -> None:
        if self.rank != 0:
            return
        folder = save_checkpoint(self.config.output_dir, self.state["step"], self.model,
                                 self.optimizer, self.extra_state, dict(self.state),
                                 self.tokenizer_dir, self.config.save_checkpoint_num, best,
                                 self.model_files)
        if self.on_checkpoint:
            self.on_checkpoint(folder)
