"""Heads on the backbone, each a small Cell, and the registry that plugs them in by name.

Every head takes the backbone's inputs: the three word inputs, then for LUKE the four
entity inputs (`*entities`), passed through to the backbone unchanged.
"""
from typing import Optional

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Zero

from src.models.backbone import Backbone
from src.models.layers import activation, dense, layer_norm
from src.models.config import ModelConfig
from src.models.crf import CRF
from src.models.dropout import Dropout, DropoutStream
from src.models.lean_ops import BiasAdd

# Families whose pretraining has a sentence-pair objective: NSP, or SOP for ALBERT.
PAIR_OBJECTIVE = {"bert": "nsp", "nezha": "nsp", "ernie": "nsp", "albert": "sop"}


class MaskedLMHead(nn.Cell):
    """Transform, then score every vocabulary entry against the tied word embeddings.

    With masked_positions, only those positions are projected (the vocabulary matmul is
    the costliest part of pretraining).
    """

    def __init__(self, config: ModelConfig, word_embeddings: Parameter,
                 width: Optional[int] = None, vocab_size: Optional[int] = None):
        super().__init__()
        width = width or config.embed_dim
        vocab_size = vocab_size or config.vocab_size
        self.transform = dense(config, config.hidden_size, width)
        self.act = activation(config.hidden_act)
        self.layer_norm = layer_norm(config, width)
        self.word_embeddings = word_embeddings
        self.bias = Parameter(Tensor(shape=(vocab_size,), dtype=ms.float32, init=Zero()),
                              name="bias")
        self.scores_of = ops.MatMul(transpose_b=True)
        self.add_bias = BiasAdd()

    def construct(self, sequence_output: Tensor, masked_positions: Optional[Tensor] = None,
                  table: Optional[Tensor] = None):
        """table: the tied table as TiedLookup passes it on (default: the Parameter itself)."""
        if masked_positions is not None:
            sequence_output = ops.gather(sequence_output, masked_positions.astype(ms.int32),
                                         1, batch_dims=1)
        h = self.layer_norm(self.act(self.transform(sequence_output)))
        flat = h.reshape(-1, h.shape[-1])
        table = (self.word_embeddings if table is None else table).astype(flat.dtype)
        logits = self.add_bias(self.scores_of(flat, table), self.bias.astype(flat.dtype))
        return logits.reshape(h.shape[:-1] + (logits.shape[-1],))


class HeadModel(nn.Cell):
    """Backbone plus a head; subclasses name the head's layers and compute its output."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.stream = DropoutStream()
        self.backbone = Backbone(config, self.stream)

    def classifier_dropout(self) -> Dropout:
        prob = self.config.classifier_dropout_prob
        return self.stream.dropout(self.config.hidden_dropout_prob if prob is None else prob)


class PreTrainingModel(HeadModel):
    """MLM logits, plus NSP/SOP logits for the families that have a pair objective."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.mlm = MaskedLMHead(config, self.backbone.embeddings.word_embeddings.embedding_table)
        self.use_pair = config.model_type in PAIR_OBJECTIVE
        if self.use_pair:
            self.pair_dropout = self.classifier_dropout()
            self.pair_classifier = dense(config, config.hidden_size, 2)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None,
                  masked_positions=None):
        sequence_output, pooled = self.backbone(input_ids, attention_mask, token_type_ids)
        mlm_logits = self.mlm(sequence_output, masked_positions)
        if self.use_pair:
            return mlm_logits, self.pair_classifier(self.pair_dropout(pooled))
        return mlm_logits


class MaskedLMModel(HeadModel):
    """MLM logits only (RoBERTa's pretraining; any family's fill-mask)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.mlm = MaskedLMHead(config, self.backbone.embeddings.word_embeddings.embedding_table)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None,
                  masked_positions=None):
        sequence_output, _ = self.backbone(input_ids, attention_mask, token_type_ids)
        return self.mlm(sequence_output, masked_positions)


class QuestionAnsweringModel(HeadModel):
    """Start and end logits over the tokens (SQuAD, CMRC2018)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.qa_outputs = dense(config, config.hidden_size, 2)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None, *entities):
        sequence_output = self.backbone(input_ids, attention_mask, token_type_ids, *entities)[0]
        logits = self.qa_outputs(sequence_output)
        return logits[..., 0], logits[..., 1]


class TokenClassificationModel(HeadModel):
    """Per-token label logits (NER); with use_crf, `crf` scores label transitions on top."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.dropout = self.classifier_dropout()
        self.classifier = dense(config, config.hidden_size, config.num_labels)
        if config.use_crf:
            self.crf = CRF(config.num_labels)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None, *entities):
        sequence_output = self.backbone(input_ids, attention_mask, token_type_ids, *entities)[0]
        return self.classifier(self.dropout(sequence_output))


class ClsDenseClassifier(nn.Cell):
    """RoBERTa's sentence head: dense + tanh on the first token, then the output layer."""

    def __init__(self, config: ModelConfig, dropout: Dropout):
        super().__init__()
        self.dropout = dropout
        self.dense = dense(config, config.hidden_size, config.hidden_size)
        self.tanh = nn.Tanh()
        self.out_proj = dense(config, config.hidden_size, config.num_labels)

    def construct(self, sequence_output: Tensor) -> Tensor:
        x = self.tanh(self.dense(self.dropout(sequence_output[:, 0])))
        return self.out_proj(self.dropout(x))


class SequenceClassificationModel(HeadModel):
    """Sentence (pair) label logits, or one score for regression (num_labels == 1)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.use_pooler = config.sequence_head == "pooler"
        if self.use_pooler:
            self.dropout = self.classifier_dropout()
            self.classifier = dense(config, config.hidden_size, config.num_labels)
        else:
            self.classifier = ClsDenseClassifier(config, self.classifier_dropout())

    def construct(self, input_ids, attention_mask=None, token_type_ids=None, *entities):
        sequence_output, pooled = self.backbone(input_ids, attention_mask, token_type_ids,
                                                *entities)[:2]
        if self.use_pooler:
            return self.classifier(self.dropout(pooled))
        return self.classifier(sequence_output)


class MultipleChoiceModel(HeadModel):
    """One score per choice; inputs are (batch, num_choices, seq) (RACE, SWAG)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.dropout = self.classifier_dropout()
        self.classifier = dense(config, config.hidden_size, 1)

    def construct(self, input_ids, attention_mask=None, token_type_ids=None, *entities):
        batch, choices = input_ids.shape[:2]
        flat = [None if t is None else t.reshape((batch * choices,) + t.shape[2:])
                for t in (input_ids, attention_mask, token_type_ids) + entities]
        pooled = self.backbone(*flat)[1]
        return self.classifier(self.dropout(pooled)).reshape(batch, choices)


HEADS = {
    "pretraining": PreTrainingModel,
    "masked_lm": MaskedLMModel,
    "question_answering": QuestionAnsweringModel,
    "token_classification": TokenClassificationModel,
    "sequence_classification": SequenceClassificationModel,
    "multiple_choice": MultipleChoiceModel,
}
