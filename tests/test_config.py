"""Typed configs: strict keys, clear errors, command-line overrides; all configs load."""
import glob
import os

import pytest

from src.errors import UserError
from src.models.config import load_model_config

CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "models",
                                        "*.yaml")))
RELEASED = ["bert_base", "bert_large", "nezha_base", "nezha_large", "albert_base", "albert_large",
            "albert_xlarge", "albert_xxlarge", "roberta_base", "roberta_large", "ernie_1.0_base"]


def test_every_released_size_has_a_config():
    names = {os.path.basename(p)[:-5] for p in CONFIGS}
    assert set(RELEASED) <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_loads(path):
    config = load_model_config(path)
    assert config.hidden_size % config.num_attention_heads == 0


def test_published_shapes():
    assert load_model_config(CONFIGS[0].replace(os.path.basename(CONFIGS[0]),
                                                "albert_xxlarge.yaml")).hidden_size == 4096
    ernie = load_model_config(os.path.join(os.path.dirname(CONFIGS[0]), "ernie_1.0_base.yaml"))
    assert (ernie.vocab_size, ernie.hidden_act, ernie.max_position_embeddings) == (18000, "relu", 513)


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_unknown_key_names_key_file_and_nearest(tmp_path):
    path = write(tmp_path, "model_type: bert\nhiden_size: 64\n")
    with pytest.raises(UserError, match=r"config.yaml: unknown key 'hiden_size'; did you mean 'hidden_size'"):
        load_model_config(path)


def test_bad_yaml_names_line(tmp_path):
    path = write(tmp_path, "model_type: bert\nhidden_size: [64\n")
    with pytest.raises(UserError, match="invalid YAML at line"):
        load_model_config(path)


def test_missing_config(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_model_config(str(tmp_path / "nope"))


def test_wrong_model_type(tmp_path):
    with pytest.raises(UserError, match="model_type.*'gpt2'.*expected one of bert"):
        load_model_config(write(tmp_path, "model_type: gpt2\n"))


def test_wrong_value_type(tmp_path):
    with pytest.raises(UserError, match="'hidden_size' expects int"):
        load_model_config(write(tmp_path, "model_type: bert\nhidden_size: big\n"))


def test_overrides_are_typed(tmp_path):
    path = write(tmp_path, "model_type: bert\nlayer_norm_eps: 1e-12\n")
    config = load_model_config(path, ["num_hidden_layers=3", "compute_dtype=float16",
                                      "hidden_dropout_prob=0"])
    assert config.num_hidden_layers == 3 and config.compute_dtype == "float16"
    assert config.layer_norm_eps == 1e-12 and config.hidden_dropout_prob == 0.0
    with pytest.raises(UserError, match="override 'layers': expected key=value"):
        load_model_config(path, ["layers"])


def test_inconsistent_shapes(tmp_path):
    with pytest.raises(UserError, match="not a multiple of num_attention_heads"):
        load_model_config(write(tmp_path, "model_type: bert\nhidden_size: 30\n"))
