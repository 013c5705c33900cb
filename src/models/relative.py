"""NEZHA's functional relative position encoding: fixed sinusoids of the clipped distance.

As in the released NEZHA code (and transformers 4.x's NezhaModel), the sinusoid for the
pair (i, j) is taken at index clip(j - i, -k, k) + k, k = max_relative_position, so
index k is distance zero. The table is not learned; it is added to keys and values.
"""
import math

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops


def sinusoid_table(rows: int, depth: int) -> np.ndarray:
    """Row r: sin(r / 10000^(2i/depth)) at even columns, cos at odd ones."""
    position = np.arange(rows, dtype=np.float32)[:, None]
    div_term = np.exp(np.arange(0, depth, 2, dtype=np.float32) * -(math.log(10000.0) / depth))
    table = np.zeros((rows, depth), dtype=np.float32)
    table[:, 0::2] = np.sin(position * div_term)
    table[:, 1::2] = np.cos(position * div_term)
    return table


class FunctionalRelativePositions(nn.Cell):
    """Builds the (length, length, head_dim) table once per batch, shared by all layers."""

    def __init__(self, head_dim: int, max_relative_position: int):
        super().__init__()
        self.max_relative_position = max_relative_position
        self.table = Tensor(sinusoid_table(2 * max_relative_position + 1, head_dim))

    def construct(self, length: int) -> Tensor:
        positions = ops.arange(length, dtype=ms.int32)
        distance = positions.expand_dims(0) - positions.expand_dims(1)
        k = self.max_relative_position
        index = ops.clip_by_value(distance, -k, k) + k
        return ops.gather(self.table, index, 0)

    @staticmethod
    def key_scores(q: Tensor, relative: Tensor) -> Tensor:
        """scores[b, h, i, j] = q[b, h, i] . relative[i, j], for q of shape (B, H, L, D)."""
        batch, heads, length, depth = q.shape
        q_by_position = q.transpose(2, 0, 1, 3).reshape(length, batch * heads, depth)
        scores = ops.BatchMatMul(transpose_b=True)(q_by_position, relative)
        return scores.reshape(length, batch, heads, length).transpose(1, 2, 0, 3)

    @staticmethod
    def value_context(probs: Tensor, relative: Tensor) -> Tensor:
        """context[b, h, i] = sum_j probs[b, h, i, j] * relative[i, j]."""
        batch, heads, length, _ = probs.shape
        p_by_position = probs.transpose(2, 0, 1, 3).reshape(length, batch * heads, length)
        context = ops.BatchMatMul()(p_by_position, relative)
        return context.reshape(length, batch, heads, -1).transpose(1, 2, 0, 3)
