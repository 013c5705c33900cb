"""A tiny pretraining run on in-memory data, for the trainer tests (also run as a script
that a test kills with SIGKILL and starts again)."""
import sys

import mindspore as ms
import numpy as np

from hf_models import TINY
from src.errors import run_cli
from src.models import build_model
from src.models.config import ModelConfig
from src.training.config import TrainConfig
from src.training.losses import pretraining_loss
from src.training.trainer import Trainer


class ArraySource:
    """Micro-batches from arrays, reshuffled each epoch from (seed, epoch)."""

    def __init__(self, columns, batch_size, seed=0):
        self.columns, self.batch_size, self.seed = columns, batch_size, seed
        self.batches_per_epoch = len(columns[0]) // batch_size

    def batches(self, epoch, skip):
        order = np.random.default_rng(self.seed + epoch).permutation(len(self.columns[0]))
        for b in range(skip, self.batches_per_epoch):
            rows = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield tuple(ms.Tensor(c[rows]) for c in self.columns)


def tiny_data(rows=32, length=16, predictions=4, seed=0):
    """Learnable pretraining columns in the zoo's order: each row counts up from a random
    start (a masked token follows from its neighbours); the pair label is the start's parity."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, 94, size=rows)
    ids = ((starts[:, None] + np.arange(length)) % 94 + 5).astype(np.int32)
    mask = np.ones_like(ids)
    types = np.zeros_like(ids)
    types[:, length // 2:] = 1
    positions = np.sort(np.stack([rng.choice(np.arange(1, length), predictions, replace=False)
                                  for _ in range(rows)]), 1).astype(np.int32)
    masked_ids = np.take_along_axis(ids, positions, 1)
    ids[np.arange(rows)[:, None], positions] = 3
    weights = np.ones(positions.shape, np.float32)
    labels = (starts % 2).astype(np.int32)
    return [ids, mask, types, positions, masked_ids, weights, labels]


def make_trainer(config: TrainConfig, dropout=0.1, data_seed=0):
    ms.set_seed(config.seed)
    model = build_model(ModelConfig(**dict(TINY, hidden_dropout_prob=dropout,
                                           attention_probs_dropout_prob=dropout)), "pretraining")

    def loss_fn(ids, mask, types, positions, masked_ids, weights, labels):
        mlm, nsp = model(ids, mask, types, positions)
        return pretraining_loss(mlm, masked_ids, weights, nsp, labels)

    source = ArraySource(tiny_data(seed=data_seed), config.batch_size, seed=config.seed)
    return Trainer(model, loss_fn, source, config)


def main():
    output_dir, steps = sys.argv[1], int(sys.argv[2])
    make_trainer(TrainConfig(output_dir=output_dir, batch_size=4, train_steps=steps,
                             learning_rate=2e-3, warmup_steps=2, save_checkpoint_steps=1,
                             save_checkpoint_num=2, logging_steps=1)).train()


if __name__ == "__main__":
    run_cli(main)
