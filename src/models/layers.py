"""The layers every part of the model builds from, initialised as BERT does."""
from mindspore import nn
from mindspore.common.initializer import TruncatedNormal

from src.models.config import ModelConfig
from src.models.lean_ops import BiasAdd, ExactGELU, LayerNorm, TanhGELU


class Dense(nn.Dense):
    """nn.Dense on 2-D rows with our BiasAdd; same parameters and names as nn.Dense."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_bias = BiasAdd()

    def construct(self, x):
        shape = x.shape
        y = self.matmul(x.reshape(-1, shape[-1]), self.weight.astype(x.dtype))
        if self.has_bias:
            y = self.add_bias(y, self.bias.astype(y.dtype))
        return y.reshape(shape[:-1] + (y.shape[-1],))


def dense(config: ModelConfig, in_dim: int, out_dim: int, has_bias: bool = True) -> Dense:
    """A linear layer initialised as BERT does (truncated normal weights, zero bias)."""
    return Dense(in_dim, out_dim, weight_init=TruncatedNormal(config.initializer_range),
                 has_bias=has_bias)


def layer_norm(config: ModelConfig, dim: int) -> nn.LayerNorm:
    return LayerNorm((dim,), epsilon=config.layer_norm_eps)


def embedding(config: ModelConfig, rows: int, dim: int) -> nn.Embedding:
    return nn.Embedding(rows, dim, embedding_table=TruncatedNormal(config.initializer_range))


def activation(name: str) -> nn.Cell:
    """gelu is the exact erf form (BERT); gelu_new the tanh approximation (ALBERT's default)."""
    return {"gelu": ExactGELU(), "gelu_new": TanhGELU(),
            "relu": nn.ReLU(), "tanh": nn.Tanh()}[name]
