"""How HF transformers names what the project names: parameters, configs and head classes.

One table drives both directions. A project name maps to one HF name, or to three
(query, key, value) that the project keeps fused as one QKV projection.
"""
from typing import Dict, List, Optional, Tuple

from src.errors import UserError
from src.models.config import ModelConfig

Pairs = List[Tuple[str, Tuple[str, ...]]]

HF_PREFIX = {"bert": "bert", "nezha": "nezha", "albert": "albert", "roberta": "roberta",
             "ernie": "ernie", "luke": "luke"}
HF_CLASS = {"bert": "Bert", "nezha": "Nezha", "albert": "Albert", "roberta": "Roberta",
            "ernie": "Ernie", "luke": "Luke"}
HEAD_SUFFIX = {None: "Model", "pretraining": "ForPreTraining", "masked_lm": "ForMaskedLM",
               "question_answering": "ForQuestionAnswering",
               "token_classification": "ForTokenClassification",
               "sequence_classification": "ForSequenceClassification",
               "multiple_choice": "ForMultipleChoice",
               "entity_classification": "ForEntityClassification",
               "entity_pair_classification": "ForEntityPairClassification",
               "entity_span_classification": "ForEntitySpanClassification"}
# Families that pretrain with transformers' ForMaskedLM class (no sentence-pair objective).
MASKED_LM_PRETRAINING = ("roberta", "luke")
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new",
                  "relu": "relu", "tanh": "tanh"}
# HF config keys read as they are (when present) into ModelConfig.
SHARED_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
               "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
               "max_position_embeddings", "type_vocab_size", "initializer_range",
               "layer_norm_eps", "pad_token_id")
FAMILY_KEYS = {"albert": ("embedding_size", "num_hidden_groups", "inner_group_num",
                          "classifier_dropout_prob"),
               "ernie": ("use_task_id", "task_type_vocab_size"),
               "nezha": ("max_relative_position",),
               "luke": ("entity_vocab_size", "entity_emb_size", "use_entity_aware_attention")}


def _linear(ours: str, hf: str) -> Pairs:
    return [(f"{ours}.weight", (f"{hf}.weight",)), (f"{ours}.bias", (f"{hf}.bias",))]


def _norm(ours: str, hf: str) -> Pairs:
    return [(f"{ours}.gamma", (f"{hf}.weight",)), (f"{ours}.beta", (f"{hf}.bias",))]


def _fused(ours: str, hf: str, parts: Tuple[str, ...]) -> Pairs:
    """One project projection holding several HF ones, stacked along the output axis."""
    return [(f"{ours}.{p}", tuple(f"{hf}.{n}.{p}" for n in parts)) for p in ("weight", "bias")]


def _qkv(ours: str, hf: str) -> Pairs:
    return _fused(f"{ours}.qkv", hf, ("query", "key", "value"))


def _entity_queries(ours: str, hf: str) -> Pairs:
    """LUKE's w2e, and e2w + e2e kept fused as one projection."""
    return (_linear(f"{ours}.entity_queries.w2e", f"{hf}.w2e_query")
            + _fused(f"{ours}.entity_queries.e2w_e2e", hf, ("e2w_query", "e2e_query")))


def _entity_embeddings(config: ModelConfig, prefix: str) -> Pairs:
    ours, hf = "backbone.entity_embeddings", f"{prefix}.entity_embeddings"
    pairs = [(f"{ours}.{t}.embedding_table", (f"{hf}.{t}.weight",))
             for t in ("entity_embeddings", "position_embeddings", "token_type_embeddings")]
    if config.entity_emb_size != config.hidden_size:
        pairs.append((f"{ours}.entity_embedding_dense.weight", (f"{hf}.entity_embedding_dense.weight",)))
    return pairs + _norm(f"{ours}.layer_norm", f"{hf}.LayerNorm")


def _embeddings(config: ModelConfig, prefix: str) -> Pairs:
    tables = ["word_embeddings"]
    if config.position_embedding_type != "functional_relative":
        tables.append("position_embeddings")
    if config.type_vocab_size > 0:
        tables.append("token_type_embeddings")
    if config.use_task_id:
        tables.append("task_type_embeddings")
    pairs = [(f"backbone.embeddings.{t}.embedding_table", (f"{prefix}.embeddings.{t}.weight",))
             for t in tables]
    pairs += _norm("backbone.embeddings.layer_norm", f"{prefix}.embeddings.LayerNorm")
    if config.embedding_size is not None:
        pairs += _linear("backbone.embeddings.projection",
                         f"{prefix}.encoder.embedding_hidden_mapping_in")
    return pairs


# Where HF keeps each part of a transformer layer, below the layer's own prefix.
BERT_LAYER = {"qkv": "attention.self", "attention_output": "attention.output.dense",
              "attention_norm": "attention.output.LayerNorm", "intermediate": "intermediate.dense",
              "output": "output.dense", "output_norm": "output.LayerNorm"}
ALBERT_LAYER = {"qkv": "attention", "attention_output": "attention.dense",
                "attention_norm": "attention.LayerNorm", "intermediate": "ffn",
                "output": "ffn_output", "output_norm": "full_layer_layer_norm"}


def _layer(ours: str, hf: str, parts: Dict[str, str], entity_aware: bool = False) -> Pairs:
    queries = _entity_queries(f"{ours}.attention", f"{hf}.{parts['qkv']}") if entity_aware else []
    return (_qkv(f"{ours}.attention", f"{hf}.{parts['qkv']}") + queries
            + _linear(f"{ours}.attention.output", f"{hf}.{parts['attention_output']}")
            + _norm(f"{ours}.attention_norm", f"{hf}.{parts['attention_norm']}")
            + _linear(f"{ours}.intermediate", f"{hf}.{parts['intermediate']}")
            + _linear(f"{ours}.output", f"{hf}.{parts['output']}")
            + _norm(f"{ours}.output_norm", f"{hf}.{parts['output_norm']}"))


def backbone_pairs(config: ModelConfig) -> Pairs:
    """Project <-> HF names of the backbone's parameters."""
    prefix = HF_PREFIX[config.model_type]
    pairs = _embeddings(config, prefix)
    if config.model_type == "albert":
        for g in range(config.groups):
            for j in range(config.inner_group_num):
                pairs += _layer(f"backbone.encoder.layers.{g * config.inner_group_num + j}",
                                f"albert.encoder.albert_layer_groups.{g}.albert_layers.{j}",
                                ALBERT_LAYER)
        return pairs + _linear("backbone.pooler.dense", "albert.pooler")
    entity_aware = config.model_type == "luke" and config.use_entity_aware_attention
    if config.model_type == "luke":
        pairs += _entity_embeddings(config, prefix)
    for i in range(config.num_hidden_layers):
        pairs += _layer(f"backbone.encoder.layers.{i}", f"{prefix}.encoder.layer.{i}", BERT_LAYER,
                        entity_aware)
    return pairs + _linear("backbone.pooler.dense", f"{prefix}.pooler.dense")


def _mlm_pairs(model_type: str) -> Pairs:
    hf = {"albert": ("predictions.dense", "predictions.LayerNorm", "predictions.bias"),
          "roberta": ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),
          "luke": ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias")}.get(
        model_type, ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                     "cls.predictions.bias"))
    return (_linear("mlm.transform", hf[0]) + _norm("mlm.layer_norm", hf[1])
            + [("mlm.bias", (hf[2],))])


def head_pairs(config: ModelConfig, head: Optional[str]) -> Pairs:
    """Project <-> HF names of a head's parameters."""
    if head is None:
        return []
    if head in ("pretraining", "masked_lm"):
        pairs = _mlm_pairs(config.model_type)
        if config.model_type == "luke":
            return pairs + (_linear("entity_mlm.transform", "entity_predictions.transform.dense")
                            + _norm("entity_mlm.layer_norm", "entity_predictions.transform.LayerNorm")
                            + [("entity_mlm.bias", ("entity_predictions.bias",))])
        if head == "pretraining" and config.model_type not in MASKED_LM_PRETRAINING:
            hf = "sop_classifier.classifier" if config.model_type == "albert" \
                else "cls.seq_relationship"
            pairs += _linear("pair_classifier", hf)
        return pairs
    if head == "question_answering":
        return _linear("qa_outputs", "qa_outputs")
    if head == "sequence_classification" and config.sequence_head == "cls_dense":
        return (_linear("classifier.dense", "classifier.dense")
                + _linear("classifier.out_proj", "classifier.out_proj"))
    if head == "entity_pair_classification":  # transformers' classifier has no bias here
        return [("classifier.weight", ("classifier.weight",))]
    return _linear("classifier", "classifier")


def all_pairs(config: ModelConfig, head: Optional[str]) -> Pairs:
    return backbone_pairs(config) + head_pairs(config, head)


def hf_architecture(model_type: str, head: Optional[str]) -> str:
    """The transformers class that holds this head (RoBERTa pretrains as ForMaskedLM)."""
    if model_type in MASKED_LM_PRETRAINING and head == "pretraining":
        head = "masked_lm"
    return HF_CLASS[model_type] + HEAD_SUFFIX[head]


def head_of_architecture(name: str) -> Tuple[str, Optional[str]]:
    """(model_type, head) of a transformers class name such as 'BertForPreTraining'."""
    for model_type, cls in HF_CLASS.items():
        for head, suffix in HEAD_SUFFIX.items():
            if name == cls + suffix:
                return model_type, head
    raise UserError(f"architecture '{name}' is not one this project converts "
                    f"(expected e.g. BertForPreTraining, AlbertModel, RobertaForMaskedLM)")


def config_from_hf(hf: Dict, source: str) -> ModelConfig:
    """ModelConfig from an HF config.json mapping."""
    model_type = hf.get("model_type")
    if model_type not in HF_PREFIX:
        raise UserError(f"{source}: model_type {model_type!r} is not one of "
                        f"{', '.join(HF_PREFIX)}")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{source}: position_embedding_type "
                        f"{hf['position_embedding_type']!r} is not supported (expected absolute)")
    act = hf.get("hidden_act", "gelu")
    if act not in HF_ACTIVATIONS:
        raise UserError(f"{source}: hidden_act {act!r} is not supported "
                        f"(expected one of {', '.join(HF_ACTIVATIONS)})")
    values = {k: hf[k] for k in SHARED_KEYS + FAMILY_KEYS.get(model_type, ()) if k in hf}
    values.update(model_type=model_type, hidden_act=HF_ACTIVATIONS[act])
    if model_type == "albert":
        values.setdefault("num_hidden_groups", 1)
    if model_type == "roberta":
        values.update(position_embedding_type="padding_offset", sequence_head="cls_dense")
    if model_type == "luke":
        values["position_embedding_type"] = "padding_offset"
        values.setdefault("pad_token_id", 1)  # RoBERTa's <pad>; the original metadata omits it
    if model_type == "nezha":
        values["position_embedding_type"] = "functional_relative"
    if hf.get("classifier_dropout") is not None:
        values["classifier_dropout_prob"] = hf["classifier_dropout"]
    labels = hf.get("id2label")
    if labels:
        values["label_names"] = [labels[str(i)] for i in range(len(labels))]
        values["num_labels"] = len(labels)
    try:
        return ModelConfig(**values)
    except (TypeError, UserError) as err:
        raise UserError(f"{source}: {err}") from None


def config_to_hf(config: ModelConfig, head: Optional[str]) -> Dict:
    """An HF config.json mapping for this config and head."""
    out = {"architectures": [hf_architecture(config.model_type, head)],
           "model_type": config.model_type}
    out.update({k: getattr(config, k) for k in SHARED_KEYS})
    out.update({k: getattr(config, k) for k in FAMILY_KEYS.get(config.model_type, ())
                if getattr(config, k) is not None})
    out["hidden_act"] = config.hidden_act
    if config.model_type == "albert":
        out["embedding_size"] = config.embed_dim
    elif config.classifier_dropout_prob is not None:
        out["classifier_dropout"] = config.classifier_dropout_prob
    names = config.label_names or [f"LABEL_{i}" for i in range(config.num_labels)]
    out["id2label"] = {str(i): n for i, n in enumerate(names)}
    out["label2id"] = {n: i for i, n in enumerate(names)}
    out["tie_word_embeddings"] = True
    return out
