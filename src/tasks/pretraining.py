"""Pretraining glue: MindRecord batches per rank, the MLM (+NSP/SOP, or LUKE's masked-entity)
loss, and evaluation."""
from typing import Dict, Iterator

import mindspore as ms
import mindspore.dataset as ds
from mindspore import Tensor, nn

from src.data.pretraining.records import create_pretraining_dataset
from src.errors import UserError
from src.models.heads import PAIR_OBJECTIVE
from src.training.losses import pretraining_loss, weighted_cross_entropy


class MindRecordSource:
    """This rank's micro-batches of a pretraining folder; epoch e reshuffles from seed + e.

    Rows are dealt to ranks by MindSpore's sharded sampler, so every rank trains on its own
    1/world of each epoch.
    """

    def __init__(self, data_dir: str, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.data_dir, self.batch_size, self.seed = data_dir, batch_size, seed
        self.shards = dict(num_shards=world, shard_id=rank) if world > 1 else {}
        self.batches_per_epoch = self._dataset(0).get_dataset_size()
        if self.batches_per_epoch == 0:
            raise UserError(f"{data_dir}: fewer instances than one batch of {batch_size} "
                            f"per rank (world size {world})")

    def _dataset(self, epoch: int):
        ds.config.set_seed(self.seed + epoch)
        return create_pretraining_dataset(self.data_dir, self.batch_size, shuffle=True,
                                          seed=self.seed * 1000 + epoch, **self.shards)

    def batches(self, epoch: int, skip: int) -> Iterator[tuple]:
        dataset = self._dataset(epoch)
        if skip:
            dataset = dataset.skip(skip)
        for row in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True):
            yield tuple(Tensor(column) for column in row)


def loss_function(model: nn.Cell):
    """loss(*batch) over the seven zoo columns, with the pair loss where the family has one;
    LUKE files add seven entity columns and the masked-entity loss."""
    if model.config.model_type == "luke":
        return luke_loss_function(model)
    use_pair = model.config.model_type in PAIR_OBJECTIVE

    def loss(input_ids, input_mask, segment_ids, pair_labels, positions, masked_ids, weights):
        out = model(input_ids, input_mask, segment_ids, positions)
        if use_pair:
            return pretraining_loss(out[0], masked_ids, weights, out[1], pair_labels)
        return pretraining_loss(out, masked_ids, weights)
    return loss


def luke_loss_function(model: nn.Cell):
    """Masked words plus masked entities (LukeForMaskedLM's mlm_loss + mep_loss), each
    projected at its masked positions only."""
    def loss(input_ids, input_mask, segment_ids, pair_labels, positions, masked_ids, weights,
             entity_ids, entity_positions, entity_segments, entity_mask, masked_entity_positions,
             masked_entity_ids, masked_entity_weights):
        mlm, entity = model(input_ids, input_mask, segment_ids, entity_ids, entity_mask,
                            entity_segments, entity_positions, positions, masked_entity_positions)
        return (pretraining_loss(mlm, masked_ids, weights)
                + weighted_cross_entropy(entity, masked_entity_ids, masked_entity_weights))
    return loss


def masked_tokens(batch: tuple) -> int:
    """Tokens a batch carries (real ones, not padding), for tokens/s."""
    return int(batch[1].asnumpy().sum())


class MaskedAccuracy:
    """Accuracy over weighted masked slots, beside always guessing the most frequent label."""

    def __init__(self):
        self.hits = self.total = 0.0
        self.label_counts: Dict[int, float] = {}

    def add(self, logits, labels, weights) -> None:
        self.hits += float(((logits.argmax(-1) == labels) * weights).sum())
        self.total += float(weights.sum())
        for label, weight in zip(labels.ravel(), weights.ravel()):
            self.label_counts[int(label)] = self.label_counts.get(int(label), 0.0) + float(weight)

    def result(self, name: str) -> Dict[str, float]:
        total = max(self.total, 1.0)
        return {f"eval_{name}_accuracy": self.hits / total,
                f"eval_{name}_baseline": max(self.label_counts.values(), default=0.0) / total}


class Evaluator:
    """MLM accuracy (and NSP/SOP, or LUKE's masked-entity, accuracy) on a held-out folder,
    beside the accuracy of always guessing the most frequent masked token (entity)."""

    def __init__(self, model: nn.Cell, data_dir: str, batch_size: int, max_batches: int):
        self.model = model
        self.forward = ms.jit(model)
        self.dataset = create_pretraining_dataset(data_dir, batch_size, shuffle=False)
        self.max_batches = max_batches
        self.use_pair = model.config.model_type in PAIR_OBJECTIVE
        self.use_entities = model.config.model_type == "luke"

    def __call__(self) -> Dict[str, float]:
        words, entities = MaskedAccuracy(), MaskedAccuracy()
        pair_hits = pairs = 0
        rows = self.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)
        for index, row in enumerate(rows):
            if index >= self.max_batches:
                break
            ids, mask, types, labels, positions, masked_ids, weights = row[:7]
            if self.use_entities:
                entity_ids, entity_positions, entity_segments, entity_mask, masked_entities, \
                    masked_entity_ids, entity_weights = row[7:]
                out = self.forward(*(Tensor(x) for x in (
                    ids, mask, types, entity_ids, entity_mask, entity_segments, entity_positions,
                    positions, masked_entities)))
                entities.add(out[1].asnumpy(), masked_entity_ids, entity_weights)
            else:
                out = self.forward(*(Tensor(x) for x in (ids, mask, types, positions)))
            words.add((out[0] if self.use_pair or self.use_entities else out).asnumpy(),
                      masked_ids, weights)
            if self.use_pair:
                pair_hits += int((out[1].asnumpy().argmax(-1) == labels.reshape(-1)).sum())
                pairs += len(labels)
        result = words.result("mlm")
        if self.use_entities:
            result.update(entities.result("entity"))
        if self.use_pair:
            result["eval_pair_accuracy"] = pair_hits / max(pairs, 1)
        return result
