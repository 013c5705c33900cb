"""A jit-compiled training step lowers the loss; float16 compute stays close to float32."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from hf_models import TINY, sample_inputs
from jit_steps import step_losses
from src.models import build_model
from src.models.config import ModelConfig
from src.training.losses import pretraining_loss, weighted_cross_entropy

FAMILIES = {"bert": {}, "nezha": dict(position_embedding_type="functional_relative"),
            "albert": dict(embedding_size=16, num_hidden_groups=1),
            "roberta": dict(position_embedding_type="padding_offset", pad_token_id=1),
            "ernie": dict(use_task_id=True, hidden_act="relu")}


def batch(family):
    ids, mask, types = sample_inputs(family, batch=4, length=12)
    rng = np.random.default_rng(0)
    positions = np.stack([np.sort(rng.choice(np.arange(1, 6), 3, replace=False)) for _ in ids])
    masked_ids = np.take_along_axis(ids, positions, 1)
    weights = np.ones(positions.shape, np.float32)
    weights[:, -1] = 0.0  # a padded prediction slot
    labels = np.array([0, 1, 0, 1], np.int32)
    return [ms.Tensor(x) for x in (ids, mask, types, positions.astype(np.int32), masked_ids,
                                   weights, labels)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_graph_mode_step_lowers_loss(family):
    ms.set_seed(0)
    config = ModelConfig(model_type=family, **dict(TINY, **FAMILIES[family]))
    model = build_model(config, "pretraining")
    model.set_train(True)
    optimizer = nn.AdamWeightDecay(model.trainable_params(), learning_rate=3e-3)

    def loss_fn(ids, mask, types, positions, masked_ids, weights, labels):
        out = model(ids, mask, types, positions)
        if family == "roberta":
            return pretraining_loss(out, masked_ids, weights)
        return pretraining_loss(out[0], masked_ids, weights, out[1], labels)

    losses = step_losses(loss_fn, optimizer, batch(family), 25)
    assert losses[-1] < 0.5 * losses[0], losses


def test_weighted_cross_entropy_ignores_zero_weights():
    logits = ms.Tensor(np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]], np.float32)))
    labels = ms.Tensor(np.array([[0, 1]], np.int32))
    loss = weighted_cross_entropy(logits, labels, ms.Tensor(np.array([[1.0, 0.0]], np.float32)))
    assert abs(float(loss.asnumpy()) - np.log(2)) < 1e-5  # float32 log-softmax


def test_float16_compute_is_close_to_float32():
    ms.set_seed(0)
    config = ModelConfig(**dict(TINY))
    model32 = build_model(config, "pretraining")
    model16 = build_model(ModelConfig(**dict(TINY, compute_dtype="float16")), "pretraining")
    for (_, a), (_, b) in zip(model32.parameters_and_names(), model16.parameters_and_names()):
        b.set_data(a.value())
    ids, mask, types = sample_inputs("bert")
    args = [ms.Tensor(x) for x in (ids, mask, types)]
    full, half = model32(*args), model16(*args)
    for x, y in zip(full, half):
        assert np.abs(x.asnumpy() - y.asnumpy().astype(np.float32)).max() < 5e-2
    layer_norm = model16.backbone.encoder.layers[0].attention_norm
    assert layer_norm.gamma.dtype == ms.float32
