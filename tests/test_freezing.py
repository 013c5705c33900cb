"""The run config's `freeze` list: matching parameters come out of training bit-identical, the rest
train, and a pattern that matches nothing is one clear error naming it."""
import numpy as np
import pytest

from src.errors import UserError
from src.models.weights import cell_arrays, read_weights
from src.training.config import TrainConfig
from src.training.freezing import trained_params
from train_tiny import make_trainer

FROZEN = ["*word_embeddings.*", "*layers.0.attention.qkv.*"]


def config(tmp_path, **kw):
    return TrainConfig(**dict(dict(output_dir=str(tmp_path / "run"), batch_size=4, train_steps=6,
                                   learning_rate=1e-2, save_checkpoint_steps=6, logging_steps=1), **kw))


def test_frozen_weights_stay_bit_identical_and_the_rest_train(tmp_path):
    trainer = make_trainer(config(tmp_path, freeze=FROZEN), dropout=0.0)
    before = {name: value.copy() for name, value in cell_arrays(trainer.model).items()}
    trainer.train()
    after = read_weights(str(tmp_path / "run" / "model_last" / "model.safetensors"))
    frozen = [name for name in before if any(part in name for part in ("word_embeddings.", "layers.0.attention.qkv."))]
    assert len(frozen) == 3  # the word table, the first layer's fused qkv weight and bias
    for name in before:
        if name in frozen:
            assert np.array_equal(after[name], before[name]), name
        elif "dropout" not in name:
            assert not np.array_equal(after[name], before[name]), name
    # the tied word table is frozen under either name; its parameter is named mlm.word_embeddings
    assert len(trainer.optimizer.parameters) == len(trainer.model.trainable_params()) - 3


def test_a_pattern_matching_nothing_is_one_error_naming_it(tmp_path):
    with pytest.raises(UserError) as caught:
        make_trainer(config(tmp_path, freeze=["*word_embeddings.*", "*entity_table*"]))
    assert str(caught.value).startswith("freeze: pattern '*entity_table*' matches no trainable parameter")


def test_freezing_everything_or_a_non_pattern_is_refused(tmp_path):
    model = make_trainer(config(tmp_path)).model
    with pytest.raises(UserError, match="nothing is left to train"):
        trained_params(model, ["*"])
    with pytest.raises(UserError, match="is not a parameter name pattern"):
        trained_params(model, [3])
    assert [p.name for p in trained_params(model, [])] == [p.name for p in model.trainable_params()]
