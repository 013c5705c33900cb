"""LUKE's component: entity embeddings and the queries of entity-aware self-attention.

Entities ride through the one backbone as extra positions after the words: the same
feed-forward layers and norms, keys and values over words + entities. What LUKE adds:
- EntityEmbeddings: an entity's input is its table row (entity_emb_size wide, projected to
  hidden_size by a bias-free dense when narrower) + the mean of the position rows of its
  mention's tokens (entity_position_ids, padded with -1) + its token type, then LayerNorm.
- TiedLookup: the table rows and the table for a decoder tied to it, with one gradient.
- EntityAwareQueries: besides the word query, w2e (words meeting entity keys), e2w and e2e
  (entities meeting word and entity keys). The four score blocks form one
  (W + E) x (W + E) matrix that one softmax normalises, as transformers' LukeSelfAttention.
"""
from typing import Optional

import mindspore as ms
from mindspore import Tensor, nn, ops

from src.models.config import ModelConfig
from src.models.dropout import DropoutStream
from src.models.layers import dense, embedding, layer_norm


class EntityEmbeddings(nn.Cell):
    """entity_ids, entity_position_ids, entity_token_type_ids -> (batch, E, hidden)."""

    def __init__(self, config: ModelConfig, stream: DropoutStream):
        super().__init__()
        hidden = config.hidden_size
        self.entity_embeddings = embedding(config, config.entity_vocab_size, config.entity_emb_size)
        self.use_dense = config.entity_emb_size != hidden
        if self.use_dense:
            self.entity_embedding_dense = dense(config, config.entity_emb_size, hidden,
                                                has_bias=False)
        self.position_embeddings = embedding(config, config.max_position_embeddings, hidden)
        self.token_type_embeddings = embedding(config, max(config.type_vocab_size, 1), hidden)
        self.layer_norm = layer_norm(config, hidden)
        self.dropout = stream.dropout(config.hidden_dropout_prob)
        self.mean_of = ops.BatchMatMul()

    def mention_positions(self, position_ids: Tensor) -> Tensor:
        """Mean of the position rows over each mention's token indices (-1 is padding)."""
        batch, entities, length = position_ids.shape
        valid = (position_ids != -1).astype(ms.float32)
        weights = valid / ops.maximum(valid.sum(-1, keepdims=True), 1e-7)
        rows = self.position_embeddings(ops.maximum(position_ids, 0))
        rows = rows.reshape(batch * entities, length, -1)
        mean = self.mean_of(weights.reshape(batch * entities, 1, length).astype(rows.dtype), rows)
        return mean.reshape(batch, entities, -1)

    def construct(self, entity_ids: Tensor, position_ids: Tensor, token_type_ids: Tensor,
                  rows: Optional[Tensor] = None) -> Tensor:
        """rows: the entities' table rows when the caller looked them up (TiedLookup)."""
        x = self.entity_embeddings(entity_ids) if rows is None else rows
        if self.use_dense:
            x = self.entity_embedding_dense(x)
        x = x + self.mention_positions(position_ids) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.layer_norm(x))


class TiedLookup(nn.Cell):
    """(table[ids], table) for a table a decoder is tied to (LUKE's masked-entity head): the
    decoder reads the table through the second output, so the table's gradient is the
    decoder's with the rows' gradients scattered in (one TensorScatterAdd) where autodiff
    would write the lookup's gradient out as a dense table and add the two (the 500K x 256
    entity table: 31 vs 74 ms, and the step's peak 560 MB lower; benchmarks/README.md,
    "Speed")."""

    def construct(self, table: Tensor, ids: Tensor):
        return ops.gather(table, ids, 0), table

    def bprop(self, table, ids, out, dout):
        rows_grad, table_grad = dout
        flat_ids = ids.reshape(-1, 1).astype(ms.int32)
        flat_rows = rows_grad.reshape(-1, rows_grad.shape[-1]).astype(table_grad.dtype)
        return ops.tensor_scatter_add(table_grad, flat_ids, flat_rows), ops.zeros_like(ids)


class EntityAwareQueries(nn.Cell):
    """The extra query projections of one attention layer: w2e on words, e2w and e2e on
    entities (one fused dense, as the backbone fuses query, key and value)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.w2e = dense(config, config.hidden_size, config.hidden_size)
        self.e2w_e2e = dense(config, config.hidden_size, 2 * config.hidden_size)

    def construct(self, x: Tensor, num_words: int):
        """(w2e, e2w, e2e) of x = words then entities, each (batch, rows, hidden)."""
        w2e = self.w2e(x[:, :num_words])
        e2w, e2e = ops.split(self.e2w_e2e(x[:, num_words:]), x.shape[-1], -1)
        return w2e, e2w, e2e
