"""LUKE's heads: masked words and entities, and the heads that read entity states.

Each takes the seven LUKE inputs (words, then entity ids, mask, token types, positions),
as transformers' LukeFor* classes do.
"""
import mindspore as ms
from mindspore import Tensor, ops

from src.models import portable
from src.models.config import ModelConfig
from src.models.entities import TiedLookup
from src.models.heads import HeadModel, MaskedLMHead
from src.models.layers import dense


class EntityMaskedLMModel(HeadModel):
    """Word MLM logits tied to the word embeddings and masked-entity logits tied to the
    entity embeddings (LukeForMaskedLM). masked_positions / masked_entity_positions project
    only those positions (what pretraining runs); without them every position is scored.
    The entity rows are looked up here (TiedLookup), so the entity table's two uses give one
    gradient."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.mlm = MaskedLMHead(config, self.backbone.embeddings.word_embeddings.embedding_table)
        self.entity_mlm = MaskedLMHead(
            config, self.backbone.entity_embeddings.entity_embeddings.embedding_table,
            width=config.entity_emb_size, vocab_size=config.entity_vocab_size)
        self.tied_lookup = TiedLookup()

    def construct(self, input_ids, attention_mask=None, token_type_ids=None, entity_ids=None,
                  entity_attention_mask=None, entity_token_type_ids=None,
                  entity_position_ids=None, masked_positions=None, masked_entity_positions=None):
        if entity_ids is None:
            sequence_output = self.backbone(input_ids, attention_mask, token_type_ids)[0]
            return self.mlm(sequence_output, masked_positions)
        rows, table = self.tied_lookup(self.entity_mlm.word_embeddings, entity_ids)
        sequence_output, _, entity_output = self.backbone(
            input_ids, attention_mask, token_type_ids, entity_ids, entity_attention_mask,
            entity_token_type_ids, entity_position_ids, rows)
        return (self.mlm(sequence_output, masked_positions),
                self.entity_mlm(entity_output, masked_entity_positions, table))


class EntityClassificationModel(HeadModel):
    """Labels of the first entity (Open Entity typing: multi-label, read with a sigmoid)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.dropout = self.stream.dropout(config.hidden_dropout_prob)
        self.classifier = dense(config, config.hidden_size, config.num_labels)

    def construct(self, input_ids, attention_mask, token_type_ids, *entities):
        entity_output = self.backbone(input_ids, attention_mask, token_type_ids, *entities)[2]
        return self.classifier(self.dropout(entity_output[:, 0]))


class EntityPairClassificationModel(HeadModel):
    """Relation of the first two entities, their states side by side (TACRED); the output
    layer has no bias, as transformers' LukeForEntityPairClassification."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.dropout = self.stream.dropout(config.hidden_dropout_prob)
        self.classifier = dense(config, 2 * config.hidden_size, config.num_labels, has_bias=False)

    def construct(self, input_ids, attention_mask, token_type_ids, *entities):
        entity_output = self.backbone(input_ids, attention_mask, token_type_ids, *entities)[2]
        pair = ops.concat((entity_output[:, 0], entity_output[:, 1]), -1)
        return self.classifier(self.dropout(pair))


def mention_ends(position_ids: Tensor):
    """(first, last) token index of each entity's mention, from positions padded with -1;
    0 for padded entities. Span NER's mentions are contiguous, so these are the span ends
    transformers takes as entity_start_positions / entity_end_positions."""
    start = ops.maximum(position_ids[:, :, 0], 0)
    end = ops.maximum(position_ids.max(axis=-1), 0)
    return start.astype(ms.int32), end.astype(ms.int32)


def states_at(sequence_output: Tensor, index: Tensor, by_matmul: bool = False) -> Tensor:
    """The word state at index[b, e] of each row: (batch, E, hidden); by_matmul, as a product with
    one-hot rows (exact: the ONNX converter's Gather drops batch_dims)."""
    if not by_matmul:
        return ops.gather(sequence_output, index, 1, batch_dims=1)
    one_hot = index.expand_dims(-1) == ops.arange(sequence_output.shape[1], dtype=ms.int32)
    return ops.BatchMatMul()(one_hot.astype(sequence_output.dtype), sequence_output)


class EntitySpanClassificationModel(HeadModel):
    """A label per candidate span (span NER as in the LUKE paper): the word states at the
    span's first and last token beside the span entity's state."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.dropout = self.stream.dropout(config.hidden_dropout_prob)
        self.classifier = dense(config, 3 * config.hidden_size, config.num_labels)
        self.gather_by_matmul = portable.onnx_ops()

    def construct(self, input_ids, attention_mask, token_type_ids, entity_ids,
                  entity_attention_mask, entity_token_type_ids, entity_position_ids):
        sequence_output, _, entity_output = self.backbone(
            input_ids, attention_mask, token_type_ids, entity_ids, entity_attention_mask,
            entity_token_type_ids, entity_position_ids)
        start, end = mention_ends(entity_position_ids)
        features = ops.concat((states_at(sequence_output, start, self.gather_by_matmul),
                               states_at(sequence_output, end, self.gather_by_matmul),
                               entity_output), -1)
        return self.classifier(self.dropout(features))


ENTITY_HEADS = {
    "entity_classification": EntityClassificationModel,
    "entity_pair_classification": EntityPairClassificationModel,
    "entity_span_classification": EntitySpanClassificationModel,
}
# The heads a LUKE directory builds in place of the word-only ones of the same name.
LUKE_HEADS = {"masked_lm": EntityMaskedLMModel, "pretraining": EntityMaskedLMModel}
