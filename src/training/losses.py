"""Losses of pretraining and of the fine-tuning heads, written for graph mode (no Python branches on data)."""
from typing import Optional

import mindspore as ms
from mindspore import Tensor, ops


def weighted_cross_entropy(logits: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
    """Mean cross entropy over entries with weight > 0 (padded MLM slots carry weight 0).

    Labels and weights may carry extra unit dimensions (the zoo stores NSP labels as (B, 1)).
    """
    log_probs = ops.log_softmax(logits.astype(ms.float32).reshape(-1, logits.shape[-1]), -1)
    index = labels.astype(ms.int32).reshape(-1, 1)
    picked = ops.gather_elements(log_probs, 1, index).reshape(-1)
    weights = weights.astype(ms.float32).reshape(-1)
    return -(picked * weights).sum() / ops.maximum(weights.sum(), 1e-5)


def pretraining_loss(mlm_logits: Tensor, masked_ids: Tensor, masked_weights: Tensor,
                     pair_logits: Optional[Tensor] = None,
                     pair_labels: Optional[Tensor] = None) -> Tensor:
    """MLM loss over the masked positions, plus NSP/SOP cross entropy where the family has it."""
    loss = weighted_cross_entropy(mlm_logits, masked_ids, masked_weights)
    if pair_logits is not None:
        loss = loss + weighted_cross_entropy(pair_logits, pair_labels,
                                             ops.ones_like(pair_labels).astype(ms.float32))
    return loss


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross entropy over every row (class labels in range)."""
    return weighted_cross_entropy(logits, labels, ops.ones_like(labels).astype(ms.float32))


def span_loss(start_logits: Tensor, end_logits: Tensor, start_positions: Tensor,
              end_positions: Tensor) -> Tensor:
    """SQuAD: the mean of the start and end cross entropies (BERT's run_squad)."""
    return (cross_entropy(start_logits, start_positions) + cross_entropy(end_logits, end_positions)) / 2


def token_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross entropy over labelled tokens (or LUKE's candidate spans); label -1 (later
    sub-tokens, specials, padding) is ignored."""
    weights = (labels >= 0).astype(ms.float32)
    return weighted_cross_entropy(logits, ops.maximum(labels, 0), weights)


def mse_loss(scores: Tensor, targets: Tensor) -> Tensor:
    """Regression (STS-B): mean squared error of one score per row."""
    return ((scores.reshape(-1).astype(ms.float32) - targets.reshape(-1).astype(ms.float32)) ** 2).mean()


def multi_label_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Multi-label typing (LukeForEntityClassification): mean binary cross entropy with logits over every
    (row, label) entry of 0/1 labels."""
    logits = logits.astype(ms.float32)
    labels = labels.astype(ms.float32)
    return (ops.relu(logits) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))).mean()
