"""The one transformer backbone: embeddings, encoder, pooler, read top to bottom.

Families differ only by config and one small component each: RoBERTa's padding-offset
positions (Embeddings), ALBERT's factorised embeddings (Embeddings.projection) and shared
layer groups (Encoder.schedule), NEZHA's functional relative positions (relative.py),
LUKE's entity embeddings and entity-aware attention queries (entities.py): entities run as
extra positions after the words.
"""
import math
from typing import Optional

import mindspore as ms
from mindspore import Tensor, nn, ops

from src.models import portable
from src.models.config import ModelConfig
from src.models.dropout import DropoutStream
from src.models.entities import EntityAwareQueries, EntityEmbeddings
from src.models.layers import activation, dense, embedding, layer_norm
from src.models.lean_ops import Softmax
from src.models.relative import FunctionalRelativePositions

# Added to attention scores at padded keys; softmax runs in float32, so this is exp() == 0.
MASK_VALUE = -1e9


def running_count(flags: Tensor, by_matmul: bool = False) -> Tensor:
    """Inclusive cumulative sum of 0/1 int32 flags (batch, L) along L; by_matmul, as a product
    with an upper-triangular matrix of ones (the ONNX converter has no CumSum)."""
    if not by_matmul:
        return ops.cumsum(flags, 1)
    index = ops.arange(flags.shape[1], dtype=ms.int32)
    upper = (index.expand_dims(1) <= index.expand_dims(0)).astype(ms.float32)
    return ops.matmul(flags.astype(ms.float32), upper).astype(ms.int32)


class Embeddings(nn.Cell):
    """Word + position + token type (+ task type) embeddings, normalised, then projected."""

    def __init__(self, config: ModelConfig, stream: DropoutStream):
        super().__init__()
        dim = config.embed_dim
        self.position_type = config.position_embedding_type
        self.pad_token_id = config.pad_token_id
        self.cumsum_by_matmul = portable.onnx_ops()
        self.word_embeddings = embedding(config, config.vocab_size, dim)
        if self.position_type != "functional_relative":
            self.position_embeddings = embedding(config, config.max_position_embeddings, dim)
        self.use_token_type = config.type_vocab_size > 0
        if self.use_token_type:
            self.token_type_embeddings = embedding(config, config.type_vocab_size, dim)
        self.use_task_id = config.use_task_id
        if self.use_task_id:
            self.task_type_embeddings = embedding(config, config.task_type_vocab_size, dim)
        self.layer_norm = layer_norm(config, dim)
        self.dropout = stream.dropout(config.hidden_dropout_prob)
        self.use_projection = config.embedding_size is not None
        if self.use_projection:
            self.projection = dense(config, dim, config.hidden_size)

    def position_ids(self, input_ids: Tensor) -> Tensor:
        """0..L-1, or RoBERTa's: pad+1.. over real tokens, pad_token_id at padding."""
        if self.position_type == "padding_offset":
            real = (input_ids != self.pad_token_id).astype(ms.int32)
            return running_count(real, self.cumsum_by_matmul) * real + self.pad_token_id
        return ops.arange(input_ids.shape[1], dtype=ms.int32).expand_dims(0)

    def construct(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        x = self.word_embeddings(input_ids)
        if self.position_type != "functional_relative":
            x = x + self.position_embeddings(self.position_ids(input_ids))
        if self.use_token_type:
            x = x + self.token_type_embeddings(token_type_ids)
        if self.use_task_id:
            x = x + self.task_type_embeddings.embedding_table[0]
        x = self.dropout(self.layer_norm(x))
        if self.use_projection:
            x = self.projection(x)
        return x


# Heads move between axes by Unstack + Stack rather than Transpose: on CPU each Transpose
# kernel keeps ~2 outputs' worth of scratch for the life of the graph (~600 MB over a
# BERT-base training step); these keep none and run as fast (benchmarks/README.md, "Memory").
# A graph for the ONNX converter, which has no Unstack, slices and transposes (portable.py).
def split_qkv(qkv: Tensor, by_slicing: bool = False) -> tuple:
    """(batch, L, 3, heads, d) -> q, k, v, each (batch, L, heads, d)."""
    if by_slicing:
        return qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    return ops.unstack(qkv, 2)


def heads_first(x: Tensor, transpose: bool = False) -> Tensor:
    """(batch, L, heads, d) -> (batch, heads, L, d)."""
    if transpose:
        return x.transpose(0, 2, 1, 3)
    return ops.stack(ops.unstack(x, 2), 1)


def heads_last(x: Tensor, transpose: bool = False) -> Tensor:
    """(batch, heads, L, d) -> (batch, L, heads, d)."""
    if transpose:
        return x.transpose(0, 2, 1, 3)
    return ops.stack(ops.unstack(x, 1), 2)


class SelfAttention(nn.Cell):
    """Multi-head self-attention with one fused QKV projection."""

    def __init__(self, config: ModelConfig, stream: DropoutStream):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = dense(config, config.hidden_size, 3 * config.hidden_size)
        self.output = dense(config, config.hidden_size, config.hidden_size)
        self.dropout = stream.dropout(config.attention_probs_dropout_prob)
        self.scores_of = ops.BatchMatMul(transpose_b=True)
        # BatchMatMul, not ops.matmul: the latter's gradient graph keeps ~8 more outputs'
        # worth of memory per call on CPU (benchmarks/README.md, "Memory")
        self.context_of = ops.BatchMatMul()
        self.softmax = Softmax(self.scale)
        self.transpose_heads = portable.onnx_ops()
        self.entity_aware = config.model_type == "luke" and config.use_entity_aware_attention
        if self.entity_aware:
            self.entity_queries = EntityAwareQueries(config)

    def split_heads(self, x: Tensor) -> Tensor:
        """(batch, L, hidden) -> (batch, heads, L, head_dim)."""
        return heads_first(x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim),
                           self.transpose_heads)

    def entity_aware_scores(self, x: Tensor, q: Tensor, k: Tensor, num_words: int) -> Tensor:
        """LUKE's four score blocks as one matrix: word keys meet the word query (word rows)
        and e2w (entity rows), entity keys meet w2e and e2e."""
        w2e, e2w, e2e = [self.split_heads(t) for t in self.entity_queries(x, num_words)]
        word_keys = self.scores_of(ops.concat((q[:, :, :num_words], e2w), 2), k[:, :, :num_words])
        entity_keys = self.scores_of(ops.concat((w2e, e2e), 2), k[:, :, num_words:])
        return ops.concat((word_keys, entity_keys), 3)

    def construct(self, x: Tensor, mask: Tensor, relative: Optional[Tensor],
                  num_words: Optional[int] = None) -> Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
        q, k, v = [heads_first(t, self.transpose_heads) for t in split_qkv(qkv, self.transpose_heads)]
        if self.entity_aware and num_words is not None:
            scores = self.entity_aware_scores(x, q, k, num_words)
        else:
            scores = self.scores_of(q, k)
        if relative is not None:
            scores = scores + FunctionalRelativePositions.key_scores(q, relative)
        probs = self.softmax(scores.astype(ms.float32), mask)
        probs = self.dropout(probs).astype(v.dtype)
        context = self.context_of(probs, v)
        if relative is not None:
            context = context + FunctionalRelativePositions.value_context(probs, relative)
        context = heads_last(context, self.transpose_heads).reshape(batch, length, width)
        return self.output(context)


class TransformerLayer(nn.Cell):
    """Post-norm transformer layer: attention, add & norm, feed-forward, add & norm."""

    def __init__(self, config: ModelConfig, stream: DropoutStream):
        super().__init__()
        self.attention = SelfAttention(config, stream)
        self.attention_norm = layer_norm(config, config.hidden_size)
        self.intermediate = dense(config, config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)
        self.output = dense(config, config.intermediate_size, config.hidden_size)
        self.output_norm = layer_norm(config, config.hidden_size)
        self.dropout = stream.dropout(config.hidden_dropout_prob)
        self.ffn_dropout = stream.dropout(config.hidden_dropout_prob)

    def construct(self, x: Tensor, mask: Tensor, relative: Optional[Tensor],
                  num_words: Optional[int] = None) -> Tensor:
        x = self.attention_norm(x + self.dropout(self.attention(x, mask, relative, num_words)))
        h = self.output(self.act(self.intermediate(x)))
        return self.output_norm(x + self.ffn_dropout(h))


class Encoder(nn.Cell):
    """A stack of layers; `schedule` says which distinct layer runs at each depth.

    BERT: every depth its own layer. ALBERT: num_hidden_groups groups of inner_group_num
    layers, depth i running group i // (num_hidden_layers / num_hidden_groups).
    """

    def __init__(self, config: ModelConfig, stream: DropoutStream):
        super().__init__()
        inner = config.inner_group_num
        self.layers = nn.CellList([TransformerLayer(config, stream)
                                   for _ in range(config.groups * inner)])
        per_group = config.num_hidden_layers // config.groups
        self.schedule = [(depth // per_group) * inner + j
                         for depth in range(config.num_hidden_layers) for j in range(inner)]
        self.use_relative = config.position_embedding_type == "functional_relative"
        if self.use_relative:
            self.relative = FunctionalRelativePositions(config.head_dim,
                                                        config.max_relative_position)

    def construct(self, x: Tensor, mask: Tensor, num_words: Optional[int] = None) -> Tensor:
        """num_words: where LUKE's entities begin in x (None: x holds words only)."""
        relative = self.relative(x.shape[1]).astype(x.dtype) if self.use_relative else None
        for index in self.schedule:
            x = self.layers[index](x, mask, relative, num_words)
        return x


class Pooler(nn.Cell):
    """tanh(dense(first token)): the sentence vector NSP and classifiers read."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = dense(config, config.hidden_size, config.hidden_size)
        self.tanh = nn.Tanh()

    def construct(self, sequence_output: Tensor) -> Tensor:
        return self.tanh(self.dense(sequence_output[:, 0]))


class Backbone(nn.Cell):
    """model(input_ids, attention_mask, token_type_ids) -> (sequence_output, pooled_output).

    LUKE takes four more inputs (entity_ids, entity_attention_mask, entity_token_type_ids,
    entity_position_ids) and returns entity_sequence_output third; without them it is RoBERTa.
    entity_rows: the entities' table rows, where a tied head looked them up (TiedLookup).
    """

    def __init__(self, config: ModelConfig, stream: Optional[DropoutStream] = None):
        super().__init__()
        self.config = config
        self.stream = stream or DropoutStream()
        self.embeddings = Embeddings(config, self.stream)
        if config.model_type == "luke":
            self.entity_embeddings = EntityEmbeddings(config, self.stream)
        self.encoder = Encoder(config, self.stream)
        self.pooler = Pooler(config)

    def scores_mask(self, attention_mask: Tensor) -> Tensor:
        """(batch, L) 1/0 -> the additive mask at the scores' shape (batch, heads, L, L):
        0 at real keys, MASK_VALUE at padding; adding it is then a same-shape Add (lean_ops.py
        on why)."""
        batch, length = attention_mask.shape
        mask = (1.0 - attention_mask.astype(ms.float32)).reshape(batch, 1, 1, length)
        return ops.broadcast_to(mask * MASK_VALUE,
                                (batch, self.config.num_attention_heads, length, length))

    def construct(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                  token_type_ids: Optional[Tensor] = None, entity_ids: Optional[Tensor] = None,
                  entity_attention_mask: Optional[Tensor] = None,
                  entity_token_type_ids: Optional[Tensor] = None,
                  entity_position_ids: Optional[Tensor] = None,
                  entity_rows: Optional[Tensor] = None):
        if attention_mask is None:
            attention_mask = ops.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = ops.zeros_like(input_ids)
        words = self.embeddings(input_ids, token_type_ids)
        if entity_ids is None:
            sequence_output = self.encoder(words, self.scores_mask(attention_mask))
            return sequence_output, self.pooler(sequence_output)
        if entity_attention_mask is None:
            entity_attention_mask = ops.ones_like(entity_ids)
        if entity_token_type_ids is None:
            entity_token_type_ids = ops.zeros_like(entity_ids)
        entities = self.entity_embeddings(entity_ids, entity_position_ids, entity_token_type_ids,
                                          entity_rows)
        num_words = input_ids.shape[1]
        mask = self.scores_mask(ops.concat((attention_mask, entity_attention_mask), 1))
        both = self.encoder(ops.concat((words, entities), 1), mask, num_words)
        sequence_output = both[:, :num_words]
        return sequence_output, self.pooler(sequence_output), both[:, num_words:]
