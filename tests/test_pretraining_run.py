"""run_pretrain.py end to end: corpus -> vocab -> MindRecord -> pretraining, standalone and
data-parallel through msrun (2 CPU workers equal 1 worker with the same global batch)."""
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from src.models.weights import read_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = """model_type: bert
vocab_size: 200
hidden_size: 32
num_hidden_layers: 2
num_attention_heads: 4
intermediate_size: 64
max_position_embeddings: 32
hidden_dropout_prob: 0.0
attention_probs_dropout_prob: 0.0
"""


def run(*args, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3")
    return subprocess.run(list(args), capture_output=True, text=True, env=env, **kw)


@pytest.fixture(scope="module")
def pretraining_data(tmp_path_factory):
    """A small corpus, its WordPiece vocabulary, and NSP MindRecord where every instance has
    exactly 2 predictions (so per-rank loss means average to the global one)."""
    folder = tmp_path_factory.mktemp("pretrain")
    rng = random.Random(0)
    words = ("the cat sat on a mat while dogs ran across green fields and birds sang "
             "loudly in tall trees near old houses").split()
    with open(folder / "corpus.txt", "w") as f:
        for _ in range(40):
            for _ in range(6):
                f.write(" ".join(rng.choice(words) for _ in range(rng.randint(8, 14))) + ".\n")
            f.write("\n")
    py = sys.executable
    assert run(py, f"{ROOT}/create_data.py", "vocab", "--input", str(folder / "corpus.txt"),
               "--output", str(folder / "vocab"), "--type", "wordpiece",
               "--vocab_size", "200").returncode == 0
    made = run(py, f"{ROOT}/create_data.py", "pretrain", "--input", str(folder / "corpus.txt"),
               "--model_dir", str(folder / "vocab"), "--output", str(folder / "data"),
               "--max_seq_length", "32", "--max_predictions_per_seq", "2",
               "--short_seq_prob", "0", "--dupe_factor", "1")
    assert made.returncode == 0, made.stderr
    (folder / "model.yaml").write_text(MODEL)
    (folder / "run.yaml").write_text(f"model_config: {folder / 'model.yaml'}\n"
                                     f"data_dir: {folder / 'data'}\ntrain_steps: 4\n"
                                     "learning_rate: 1.0e-3\nsave_checkpoint_steps: 2\n"
                                     "logging_steps: 1\nseed: 7\n")
    return folder


def weights(folder):
    return read_weights(os.path.join(folder, "model_last", "model.safetensors"))


def test_two_msrun_workers_equal_one_worker(pretraining_data, tmp_path):
    config = str(pretraining_data / "run.yaml")
    one = run(sys.executable, f"{ROOT}/run_pretrain.py", "--config", config,
              f"output_dir={tmp_path / 'one'}", "batch_size=4")
    assert one.returncode == 0, one.stderr[-2000:]
    two = run("bash", f"{ROOT}/scripts/run_distributed_pretrain.sh", "2", "CPU", config,
              f"output_dir={tmp_path / 'two'}", "batch_size=2")
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:]
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys()
    assert max(np.abs(a[k] - b[k]).max() for k in a) <= 1e-5
    assert (tmp_path / "one" / "model_last" / "vocab.txt").exists()


FAMILIES = {
    "albert": ("sentencepiece", ["--objective", "sop", "--whole_word_mask"],
               "model_type: albert\nembedding_size: 16\nnum_hidden_groups: 1\n"),
    "roberta": ("bpe", ["--objective", "none", "--masking", "dynamic"],
                "model_type: roberta\nposition_embedding_type: padding_offset\n"
                "type_vocab_size: 1\n"),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_pretrains_and_converts_to_hf(family, pretraining_data, tmp_path):
    """ALBERT (SentencePiece, SOP, whole words) and RoBERTa (BPE, full sentences, dynamic
    masking) from corpus to a model directory that converts to transformers."""
    kind, options, model = FAMILIES[family]
    py, corpus = sys.executable, str(pretraining_data / "corpus.txt")
    assert run(py, f"{ROOT}/create_data.py", "vocab", "--input", corpus, "--output",
               str(tmp_path / "vocab"), "--type", kind, "--vocab_size", "150").returncode == 0
    made = run(py, f"{ROOT}/create_data.py", "pretrain", "--input", corpus, "--model_dir",
               str(tmp_path / "vocab"), "--output", str(tmp_path / "data"), "--max_seq_length",
               "32", "--max_predictions_per_seq", "4", *options)
    assert made.returncode == 0, made.stderr
    positions = "34" if family == "roberta" else "32"  # RoBERTa counts from pad id + 1
    (tmp_path / "model.yaml").write_text(model + MODEL.replace("model_type: bert\n", "").replace(
        "max_position_embeddings: 32", f"max_position_embeddings: {positions}"))
    trained = run(py, f"{ROOT}/run_pretrain.py", "--config", str(pretraining_data / "run.yaml"),
                  f"model_config={tmp_path / 'model.yaml'}", f"data_dir={tmp_path / 'data'}",
                  f"output_dir={tmp_path / 'run'}", "batch_size=4", "train_steps=3")
    assert trained.returncode == 0, trained.stderr[-2000:]
    converted = run(py, f"{ROOT}/convert_checkpoint.py", "--input",
                    str(tmp_path / "run" / "model_last"), "--output", str(tmp_path / "hf"))
    assert converted.returncode == 0, converted.stderr[-2000:]
    import json

    import transformers
    architecture = json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"][0]
    assert architecture == {"albert": "AlbertForPreTraining", "roberta": "RobertaForMaskedLM"}[family]
    hf, info = getattr(transformers, architecture).from_pretrained(str(tmp_path / "hf"),
                                                                  output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_failing_workers_fail_the_launch_and_are_named(pretraining_data, tmp_path):
    config = str(pretraining_data / "run.yaml")
    failed = run("bash", f"{ROOT}/scripts/run_distributed_pretrain.sh", "2", "CPU", config,
                 f"output_dir={tmp_path / 'bad'}", "data_dir=/nonexistent")
    assert failed.returncode != 0
    assert "failed: rank 0 -- see" in failed.stderr and "failed: rank 1 -- see" in failed.stderr


def test_bad_config_is_one_line(pretraining_data, tmp_path):
    result = run(sys.executable, f"{ROOT}/run_pretrain.py", "--config",
                 str(pretraining_data / "run.yaml"), "batch_sise=4")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown key 'batch_sise'; did you mean 'batch_size'" in result.stderr
