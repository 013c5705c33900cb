"""ModelConfig: the hyper-parameters of one backbone, read from a model directory's config.yaml."""
import dataclasses
import os
from dataclasses import dataclass
from typing import Iterable, List, Optional

from src.config import build_dataclass, parse_overrides, read_yaml, write_yaml_atomic
from src.errors import UserError

MODEL_TYPES = ("bert", "nezha", "albert", "roberta", "ernie", "luke")
POSITION_TYPES = ("absolute", "padding_offset", "functional_relative")
ACTIVATIONS = ("gelu", "gelu_new", "relu", "tanh")
COMPUTE_DTYPES = ("float32", "float16", "bfloat16")
SEQUENCE_HEADS = ("pooler", "cls_dense")


@dataclass
class ModelConfig:
    """One backbone's shape; a family is a set of values here, plus its small component."""

    model_type: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    # absolute (BERT, ERNIE, ALBERT), padding_offset (RoBERTa: ids count from pad+1),
    # functional_relative (NEZHA: sinusoidal relative positions in every attention layer)
    position_embedding_type: str = "absolute"
    max_relative_position: int = 64
    # ALBERT: factorised embeddings (embedding_size -> hidden) and shared layer groups
    embedding_size: Optional[int] = None
    num_hidden_groups: Optional[int] = None
    inner_group_num: int = 1
    # ERNIE: task type embeddings
    use_task_id: bool = False
    task_type_vocab_size: int = 3
    # LUKE: entity embeddings (entity_emb_size wide, projected to hidden_size when narrower)
    # and entity-aware self-attention; the lengths are what data builders and export default to
    entity_vocab_size: int = 500000
    entity_emb_size: int = 256
    use_entity_aware_attention: bool = True
    max_entity_length: int = 128
    max_mention_length: int = 30
    # sequence classification head: pooler output (BERT) or CLS dense+tanh (RoBERTa)
    sequence_head: str = "pooler"
    classifier_dropout_prob: Optional[float] = None
    num_labels: int = 2
    label_names: Optional[List[str]] = None
    # token classification: a CRF over the label scores (Viterbi decoding), as the BERT seed offers
    use_crf: bool = False
    compute_dtype: str = "float32"
    do_lower_case: Optional[bool] = None
    # which head the directory's weights hold (None: backbone only); set when saving
    head: Optional[str] = None

    def __post_init__(self) -> None:
        self._check_choice("model_type", MODEL_TYPES)
        self._check_choice("position_embedding_type", POSITION_TYPES)
        self._check_choice("hidden_act", ACTIVATIONS)
        self._check_choice("compute_dtype", COMPUTE_DTYPES)
        self._check_choice("sequence_head", SEQUENCE_HEADS)
        if self.hidden_size % self.num_attention_heads:
            raise UserError(f"hidden_size {self.hidden_size} is not a multiple of "
                            f"num_attention_heads {self.num_attention_heads}")
        if self.num_hidden_layers % self.groups:
            raise UserError(f"num_hidden_layers {self.num_hidden_layers} is not a multiple of "
                            f"num_hidden_groups {self.groups}")

    def _check_choice(self, key: str, choices: Iterable[str]) -> None:
        if getattr(self, key) not in choices:
            raise UserError(f"config key '{key}' is {getattr(self, key)!r}; "
                            f"expected one of {', '.join(choices)}")

    @property
    def groups(self) -> int:
        """Distinct layer groups: one per layer unless ALBERT shares them."""
        return self.num_hidden_groups or self.num_hidden_layers

    @property
    def embed_dim(self) -> int:
        """Width of the embedding tables (ALBERT's embedding_size, else hidden_size)."""
        return self.embedding_size or self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, model_dir: str) -> None:
        write_yaml_atomic(self.to_dict(), os.path.join(model_dir, "config.yaml"))


def load_model_config(path: str, overrides: Iterable[str] = ()) -> ModelConfig:
    """Read a model config from a YAML file or a model directory holding config.yaml."""
    if os.path.isdir(path):
        path = os.path.join(path, "config.yaml")
    values = read_yaml(path)
    values.update(parse_overrides(overrides))
    if "model_type" not in values:
        raise UserError(f"{path}: missing key 'model_type' (one of {', '.join(MODEL_TYPES)})")
    return build_dataclass(ModelConfig, values, path)
