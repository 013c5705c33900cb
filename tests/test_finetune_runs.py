"""Fine-tuning end to end on generated files of every task type: create_data.py <task> ->
run_finetune.py (evaluation on the raw dev file every eval_steps, best checkpoint kept and
loaded) -> run_eval.py --model_dir, whose scores equal scoring the written predictions file."""
import json
import os
import subprocess
import sys

import pytest

from src.data.tokenization import load_tokenizer
from src.models import build_model, save_pretrained
from src.models.config import ModelConfig
from task_files import write_all

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINING = ["batch_size=16", "learning_rate=2e-3", "num_train_epochs=null", "train_steps=150",
            "warmup_ratio=0.1", "eval_steps=50", "save_checkpoint_steps=50", "logging_steps=10"]
# name: (create_data subcommand and options, task config, extra overrides, dev file key,
#        the metric the config picks the best checkpoint by, the level a learnt rule reaches)
RUNS = {
    "squad": (["squad", "--max_seq_length", "64", "--doc_stride", "32", "--max_query_length", "16"],
              "squad_v1", [], "squad_dev", "f1", 90.0),
    "ner": (["ner", "--max_seq_length", "32"], "conll2003", [], "conll_dev", "f1", 0.9),
    "ner_crf": (["ner", "--max_seq_length", "32"], "conll2003", ["use_crf=true"], "conll_dev", "f1", 0.9),
    "sst2": (["classification", "--dataset", "sst2", "--max_seq_length", "32"], "sst2", [], "sst2_dev",
             "accuracy", 0.95),
    "race": (["race", "--max_seq_length", "48"], "race", [], "race_dev", "accuracy", 0.9),
}


def run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3")
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Generated task files, a WordPiece vocabulary trained on them, and a random tiny BERT."""
    folder = tmp_path_factory.mktemp("finetune")
    files = write_all(folder / "files")
    made = run("create_data.py", "vocab", "--input", files["corpus"], "--output", folder / "tokenizer",
               "--vocab_size", "300", "--min_frequency", "1")
    assert made.returncode == 0, made.stderr
    tokenizer = load_tokenizer(folder / "tokenizer")
    config = ModelConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         pad_token_id=tokenizer.pad_token_id)
    save_pretrained(build_model(config), str(folder / "model"))
    tokenizer.save(folder / "model")
    return folder, files


@pytest.mark.parametrize("name", sorted(RUNS))
def test_fine_tuning_learns_and_run_eval_scores_the_best_checkpoint(setup, name):
    folder, files = setup
    builder, config, extra, dev, metric, level = RUNS[name]
    data, out = folder / f"{name}_train", folder / f"{name}_out"
    made = run("create_data.py", *builder, "--input", files[dev.replace("_dev", "_train")],
               "--model_dir", folder / "model", "--output", data)
    assert made.returncode == 0, made.stderr[-2000:]
    tuned = run("run_finetune.py", "--config", f"configs/tasks/{config}.yaml", "--model_dir", folder / "model",
                f"data_dir={data}", f"eval_file={files[dev]}", f"output_dir={out}", *TRAINING, *extra)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    state = json.loads((out / "model_best" / "trainer_state.json").read_text())
    assert state["best_metric"] >= level
    evaluations = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                   if f"eval_{metric}" in line]
    assert [row["step"] for row in evaluations] == [50, 100, 150]
    assert state["best_metric"] == max(row[f"eval_{metric}"] for row in evaluations)
    scored = run("run_eval.py", "--task", config, "--model_dir", out / "model_best", "--data", files[dev],
                 "--output_dir", out / "eval")
    assert scored.returncode == 0, scored.stderr[-3000:]
    scores = json.loads(scored.stdout)
    assert scores[metric] == pytest.approx(state["best_metric"], abs=1e-9)  # the best weights, not the last
    if name == "squad":
        again = run("run_eval.py", "--task", "squad_v1", "--data", files[dev],
                    "--predictions", out / "eval" / "predictions.json")
        assert again.stdout == scored.stdout
    if name.startswith("ner"):
        again = run("run_eval.py", "--task", "ner", "--data", out / "eval" / "predictions.txt")
        assert again.stdout == scored.stdout


def test_features_from_another_tokenizer_are_refused(setup, tmp_path):
    folder, files = setup
    other = tmp_path / "other"
    made = run("create_data.py", "vocab", "--input", files["corpus"], "--output", other, "--vocab_size", "120",
               "--min_frequency", "1")
    assert made.returncode == 0, made.stderr
    data = tmp_path / "data"
    assert run("create_data.py", "classification", "--dataset", "sst2", "--input", files["sst2_train"],
               "--model_dir", other, "--output", data).returncode == 0
    tuned = run("run_finetune.py", "--config", "configs/tasks/sst2.yaml", "--model_dir", folder / "model",
                f"data_dir={data}", f"output_dir={tmp_path / 'out'}")
    assert tuned.returncode == 2
    assert tuned.stderr.strip().splitlines()[-1].startswith(f"error: {data}: features were built with another")
