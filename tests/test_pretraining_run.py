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
