"""Model registry and the stable API: build_model, load_pretrained, save_pretrained."""
import dataclasses
import logging
import os
from typing import Optional

import mindspore as ms
from mindspore import nn

from src.errors import UserError
from src.models.backbone import Backbone
from src.models.config import ModelConfig, load_model_config
from src.models.entity_heads import ENTITY_HEADS, LUKE_HEADS
from src.models.heads import HEADS as WORD_HEADS
from src.models.lean_ops import Softmax
from src.models.weights import FORMATS, cell_arrays, find_weights, load_into, read_weights, \
    write_weights

logger = logging.getLogger(__name__)

__all__ = ["ModelConfig", "build_model", "load_pretrained", "save_pretrained", "HEADS"]

HEADS = {**WORD_HEADS, **ENTITY_HEADS}


def apply_compute_dtype(model: nn.Cell, dtype_name: str) -> None:
    """Run dense layers in float16/bfloat16; layer norm and softmax stay in float32."""
    if dtype_name == "float32":
        return
    dtype = getattr(ms, dtype_name)
    for _, cell in model.cells_and_names():
        if isinstance(cell, nn.Dense):
            cell.to_float(dtype)
        elif isinstance(cell, (nn.LayerNorm, Softmax)):
            cell.to_float(ms.float32)


def head_name(model: nn.Cell) -> Optional[str]:
    """The registry name of a model's head (None for a bare backbone)."""
    return getattr(model, "head_name", None)


def head_class(config: ModelConfig, head: str) -> type:
    """The Cell class of a head for this family (LUKE's masked LM also predicts entities)."""
    if head not in HEADS:
        raise UserError(f"unknown head '{head}'; expected one of {', '.join(HEADS)}")
    if config.model_type == "luke":
        return LUKE_HEADS.get(head, HEADS[head])
    if head in ENTITY_HEADS:
        raise UserError(f"head '{head}' reads entity states; it needs a luke model, "
                        f"not {config.model_type}")
    return HEADS[head]


def build_model(config: ModelConfig, head: Optional[str] = None) -> nn.Cell:
    """A freshly initialised backbone, or backbone + the named head."""
    model = Backbone(config) if head is None else head_class(config, head)(config)
    model.head_name = head
    apply_compute_dtype(model, config.compute_dtype)
    return model


def load_pretrained(model_dir: str, head: Optional[str] = None, **overrides) -> nn.Cell:
    """Build the model of a model directory and load its weights (eval mode).

    `overrides` replace config values (for example num_labels for a new classifier).
    """
    config = dataclasses.replace(load_model_config(model_dir), **overrides)
    model = build_model(config, head)
    path = find_weights(model_dir)
    fresh, unused = load_into(model, read_weights(path), path)
    if fresh:
        logger.info("newly initialised (not in %s): %s", path, ", ".join(fresh))
    if unused:
        logger.info("weights in %s not used by this model: %s", path, ", ".join(unused))
    model.set_train(False)
    return model


def save_pretrained(model: nn.Cell, model_dir: str, fmt: str = "safetensors") -> None:
    """Write config.yaml and the weights of `model` into model_dir."""
    if fmt not in FORMATS:
        raise UserError(f"unknown weights format '{fmt}'; expected one of {', '.join(FORMATS)}")
    os.makedirs(model_dir, exist_ok=True)
    config = model.config if isinstance(model, Backbone) else model.backbone.config
    config.head = head_name(model)
    write_weights(cell_arrays(model), os.path.join(model_dir, FORMATS[fmt]))
    config.save(model_dir)
