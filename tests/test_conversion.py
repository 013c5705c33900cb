"""Checkpoint conversion: HF -> project -> HF bit-exact, zoo names, formats, bad sources."""
import json
import re
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
import torch

from hf_models import hf_class, make_hf_model, sample_inputs
from src.errors import UserError
from src.models import build_model, load_pretrained
from src.models.config import load_model_config
from src.models.conversion import convert
from src.models.weights import cell_arrays, read_weights, write_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUND_TRIPS = [("bert", "pretraining", {}), ("bert", "token_classification", {}),
               ("albert", "pretraining", dict(num_hidden_layers=4, num_hidden_groups=2,
                                              inner_group_num=2)),
               ("albert", "question_answering", {}), ("roberta", "pretraining", {}),
               ("roberta", "sequence_classification", {}), ("roberta", None, {}),
               ("ernie", "multiple_choice", dict(use_task_id=True)), ("ernie", "pretraining", {})]


@pytest.mark.parametrize("family,head,overrides", ROUND_TRIPS)
def test_hf_project_hf_round_trip_is_bit_exact(family, head, overrides, tmp_path):
    if head in ("token_classification", "sequence_classification"):
        overrides = dict(overrides, num_labels=3)
    original = make_hf_model(family, head, str(tmp_path / "hf"), **overrides)
    convert(str(tmp_path / "hf"), str(tmp_path / "ours"))
    convert(str(tmp_path / "ours"), str(tmp_path / "back"))
    reloaded, info = hf_class(family, head).from_pretrained(str(tmp_path / "back"),
                                                            output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    theirs = original.state_dict()
    for name, value in reloaded.state_dict().items():
        assert torch.equal(value, theirs[name]), name


def test_ckpt_format_loads_the_same(tmp_path):
    make_hf_model("bert", "pretraining", str(tmp_path / "hf"))
    convert(str(tmp_path / "hf"), str(tmp_path / "st"))
    convert(str(tmp_path / "hf"), str(tmp_path / "ck"), fmt="ckpt")
    assert os.path.isfile(tmp_path / "ck" / "model.ckpt")
    a, b = read_weights(str(tmp_path / "st/model.safetensors")), read_weights(str(tmp_path / "ck/model.ckpt"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    ids, mask, types = sample_inputs("bert")
    outs = [load_pretrained(str(tmp_path / d))(ms.Tensor(ids), ms.Tensor(mask), ms.Tensor(types))[0]
            for d in ("st", "ck")]
    assert np.array_equal(outs[0].asnumpy(), outs[1].asnumpy())


def zoo_names(arrays, layers):
    """Rename project arrays the way the model zoo's bert_model.py names them, plus optimizer state."""
    out = {"global_step": np.array([7], np.int32)}
    p = "bert.bert."
    rename = {"backbone.embeddings.word_embeddings.embedding_table": p + "bert_embedding_lookup.embedding_table",
              "backbone.embeddings.token_type_embeddings.embedding_table": p + "bert_embedding_postprocessor.token_type_embedding.embedding_table",
              "backbone.embeddings.position_embeddings.embedding_table": p + "bert_embedding_postprocessor.full_position_embedding.embedding_table",
              "backbone.embeddings.layer_norm.gamma": p + "bert_embedding_postprocessor.layernorm.gamma",
              "backbone.embeddings.layer_norm.beta": p + "bert_embedding_postprocessor.layernorm.beta",
              "backbone.pooler.dense.weight": p + "dense.weight", "backbone.pooler.dense.bias": p + "dense.bias",
              "mlm.transform.weight": "bert.cls1.dense.weight", "mlm.transform.bias": "bert.cls1.dense.bias",
              "mlm.layer_norm.gamma": "bert.cls1.layernorm.gamma", "mlm.layer_norm.beta": "bert.cls1.layernorm.beta",
              "mlm.bias": "bert.cls1.output_bias", "pair_classifier.weight": "bert.cls2.dense.weight",
              "pair_classifier.bias": "bert.cls2.dense.bias"}
    for i in range(layers):
        q = f"backbone.encoder.layers.{i}."
        z = f"{p}bert_encoder.layers.{i}."
        rename.update({q + "attention.output.weight": z + "attention.output.dense.weight",
                       q + "attention.output.bias": z + "attention.output.dense.bias",
                       q + "attention_norm.gamma": z + "attention.output.layernorm.gamma",
                       q + "attention_norm.beta": z + "attention.output.layernorm.beta",
                       q + "intermediate.weight": z + "intermediate.weight", q + "intermediate.bias": z + "intermediate.bias",
                       q + "output.weight": z + "output.dense.weight", q + "output.bias": z + "output.dense.bias",
                       q + "output_norm.gamma": z + "output.layernorm.gamma", q + "output_norm.beta": z + "output.layernorm.beta"})
        for kind in ("weight", "bias"):
            for part, name in zip(np.split(arrays[q + f"attention.qkv.{kind}"], 3), ("query", "key", "value")):
                out[z + f"attention.attention.{name}_layer.{kind}"] = part
    for ours, zoo in rename.items():
        out[zoo] = arrays[ours]
        out["moment1." + zoo] = np.zeros_like(arrays[ours])
    return out


def test_model_zoo_checkpoint_converts(tmp_path):
    config_path = os.path.join(ROOT, "configs/models/bert_tiny.yaml")
    model = build_model(load_model_config(config_path), "pretraining")
    arrays = cell_arrays(model)
    zoo = zoo_names(arrays, 2)
    write_weights(zoo, str(tmp_path / "zoo.ckpt"))
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    notes = convert(str(tmp_path / "zoo.ckpt"), str(tmp_path / "ours"), config_path=config_path,
                    vocab=str(tmp_path / "vocab.txt"))
    left_out = 1 + sum(name.startswith("moment1.") for name in zoo)  # global_step + moments
    assert f"{left_out} entries left out" in notes[-1]
    back = read_weights(str(tmp_path / "ours/model.safetensors"))
    assert back.keys() == arrays.keys()
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)
    assert (tmp_path / "ours/vocab.txt").exists()


def test_nezha_zoo_checkpoint_with_learned_tables_is_refused(tmp_path):
    config_path = os.path.join(ROOT, "configs/models/nezha_tiny.yaml")
    arrays = zoo_names(cell_arrays(build_model(load_model_config(
        os.path.join(ROOT, "configs/models/bert_tiny.yaml")), "pretraining")), 2)
    arrays["bert.bert.bert_encoder.layers.0.attention.attention."
           "_generate_relative_positions_embeddings.embeddings_table"] = np.zeros((33, 16), np.float32)
    write_weights(arrays, str(tmp_path / "zoo.ckpt"))
    with pytest.raises(UserError, match="learned relative position table"):
        convert(str(tmp_path / "zoo.ckpt"), str(tmp_path / "ours"), config_path=config_path)
    assert not (tmp_path / "ours").exists()


def cli(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "convert_checkpoint.py"), *args],
                          capture_output=True, text=True, cwd=ROOT)


def break_hf(folder, how):
    """Damage a saved HF model the way users' checkpoints go wrong."""
    if how == "unknown model_type":
        config = json.loads((folder / "config.json").read_text())
        config["model_type"] = "gpt2"
        (folder / "config.json").write_text(json.dumps(config))
        return "model_type 'gpt2' is not one of"
    from safetensors.numpy import load_file, save_file
    arrays = load_file(str(folder / "model.safetensors"))
    if how == "missing names":
        del arrays["bert.encoder.layer.1.output.dense.weight"]
        expected = "missing bert.encoder.layer.1.output.dense.weight"
    elif how == "unexpected names":
        arrays["bert.encoder.layer.9.output.dense.weight"] = np.zeros((2, 2), np.float32)
        expected = "unexpected bert.encoder.layer.9.output.dense.weight"
    else:
        arrays["bert.pooler.dense.weight"] = np.zeros((32, 31), np.float32)
        expected = r"backbone.pooler.dense.weight \(32, 31\) vs expected \(32, 32\)"
    save_file(arrays, str(folder / "model.safetensors"))
    return expected


@pytest.mark.parametrize("how", ["missing names", "unexpected names", "wrong shape",
                                 "unknown model_type"])
def test_mismatched_source_fails_cleanly(how, tmp_path):
    make_hf_model("bert", "pretraining", str(tmp_path / "hf"))
    expected = break_hf(tmp_path / "hf", how)
    result = cli("--input", str(tmp_path / "hf"), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and re.search(expected, lines[0]), result.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_cli_converts_and_refuses_to_overwrite(tmp_path):
    make_hf_model("albert", "pretraining", str(tmp_path / "hf"))
    assert cli("--input", str(tmp_path / "hf"), "--output", str(tmp_path / "out")).returncode == 0
    again = cli("--input", str(tmp_path / "hf"), "--output", str(tmp_path / "out"))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert cli("--input", str(tmp_path / "hf"), "--output", str(tmp_path / "out"),
               "--overwrite", "--format", "ckpt").returncode == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["config.yaml", "model.ckpt"]


def test_pickle_needs_opt_in(tmp_path):
    model = make_hf_model("bert", None, str(tmp_path / "hf"))
    os.remove(tmp_path / "hf" / "model.safetensors")
    torch.save(model.state_dict(), tmp_path / "hf" / "pytorch_model.bin")
    refused = cli("--input", str(tmp_path / "hf"), "--output", str(tmp_path / "out"))
    assert refused.returncode == 2 and "--allow_pickle" in refused.stderr
    assert cli("--input", str(tmp_path / "hf"), "--output", str(tmp_path / "out"),
               "--allow_pickle").returncode == 0
