"""Losses of the pretraining objectives, written for graph mode (no Python branches on data)."""
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
