"""LUKE's heads under one seven-input signature, so every exported graph names its inputs alike.

The heads take the entity inputs as `*entities`, which MindSpore's ONNX converter names
entities0..3 (and the word inputs Parameter_N); the runtime feeds ONNX inputs by the sidecar's
names, so the graph must carry them.
"""
from mindspore import nn


class LukeInputs(nn.Cell):
    """model(the seven LUKE inputs) under their own names."""

    def __init__(self, model: nn.Cell):
        super().__init__()
        self.model = model

    def construct(self, input_ids, attention_mask, token_type_ids, entity_ids, entity_attention_mask,
                  entity_token_type_ids, entity_position_ids):
        return self.model(input_ids, attention_mask, token_type_ids, entity_ids, entity_attention_mask,
                          entity_token_type_ids, entity_position_ids)
