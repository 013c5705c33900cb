"""LUKE fine-tuning end to end on generated files: a tiny random LUKE directory (byte-level BPE + entity
vocabulary) -> create_data.py open_entity | tacred | conll_spans | squad -> run_finetune.py (scored on the
raw dev file, best checkpoint kept) -> run_eval.py --model_dir, which scores the best checkpoint alike."""
import json

import mindspore as ms
import numpy as np
import pytest

from entity_task_files import ENTITIES, write_entity_tasks
from src.data.tokenization import load_tokenizer
from src.models import build_model, save_pretrained
from src.models.config import ModelConfig
from src.models.weights import read_weights
from task_files import write_all
from test_finetune_runs import RUNS as WORD_RUNS, TRAINING, run
from tiny_tokenizers import train_luke

# name: (create_data options, task config, the level a learnt rule reaches, train steps)
RUNS = {
    "open_entity": (["--max_seq_length", "32"], "luke_open_entity", 0.9, 240),
    "tacred": (["--max_seq_length", "40"], "luke_tacred", 0.9, 150),
    "conll_spans": (["--max_seq_length", "32", "--max_entity_length", "64", "--max_mention_length", "6",
                     "--context", "sentence"], "luke_conll2003", 0.9, 150),
}


def tiny_luke(folder, corpus):
    """A random tiny LUKE with entity-aware attention and a BPE vocabulary trained on `corpus`."""
    tokenizer_dir = train_luke(corpus, folder / "tokenizer", 500, ENTITIES)
    tokenizer = load_tokenizer(tokenizer_dir)
    config = ModelConfig(model_type="luke", vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=64,
                         max_position_embeddings=64 + tokenizer.pad_token_id + 1, type_vocab_size=1,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-5,
                         pad_token_id=tokenizer.pad_token_id, position_embedding_type="padding_offset",
                         entity_vocab_size=len(ENTITIES), entity_emb_size=16, use_entity_aware_attention=True)
    ms.set_seed(0)  # the same random init in every session: learning speed depends on it
    model_dir = folder / "luke_model"
    save_pretrained(build_model(config), str(model_dir))
    tokenizer.save(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Entity task files, SQuAD files, and a tiny LUKE whose vocabulary is trained on the entity tasks' text
    and the SQuAD contexts."""
    folder = tmp_path_factory.mktemp("luke_finetune")
    files = write_entity_tasks(folder / "files")
    words = write_all(folder / "word_files")
    squad = [line for line in words["corpus"].read_text().splitlines() if "answer" in line]
    files.update(squad_train=words["squad_train"], squad_dev=words["squad_dev"])
    return folder, files, tiny_luke(folder, files["corpus"] * 3 + squad)


def check_run(folder, files, model_dir, name):
    """Build the task's features, fine-tune, check the best checkpoint is kept and run_eval scores it alike."""
    builder, config, level, steps = RUNS[name]
    every = steps // 3
    schedule = [f"train_steps={steps}", f"eval_steps={every}", f"save_checkpoint_steps={every}"]
    data, out = folder / f"{name}_train", folder / f"{name}_out"
    made = run("create_data.py", name, *builder, "--input", files[f"{name}_train"], "--model_dir", model_dir,
               "--output", data)
    assert made.returncode == 0, made.stderr[-2000:]
    tuned = run("run_finetune.py", "--config", f"configs/tasks/{config}.yaml", "--model_dir", model_dir,
                f"data_dir={data}", f"eval_file={files[f'{name}_dev']}", f"output_dir={out}", *TRAINING,
                *schedule)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    state = json.loads((out / "model_best" / "trainer_state.json").read_text())
    evaluations = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                   if "eval_f1" in line]
    assert [row["step"] for row in evaluations] == [every, 2 * every, 3 * every]
    assert state["best_metric"] == max(row["eval_f1"] for row in evaluations)
    assert state["best_metric"] >= level, evaluations
    scored = run("run_eval.py", "--task", config, "--model_dir", out / "model_best", "--data",
                 files[f"{name}_dev"], "--output_dir", out / "eval")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert json.loads(scored.stdout)["f1"] == pytest.approx(state["best_metric"], abs=1e-9)
    return out


def test_entity_typing_learns_and_run_eval_scores_the_best_checkpoint(setup):
    check_run(*setup, "open_entity")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tacred", "conll_spans"])
def test_relation_and_span_tasks_learn(setup, name):
    check_run(*setup, name)


@pytest.mark.slow
def test_squad_with_luke_as_roberta_and_its_entity_table_frozen(setup):
    """Plain SQuAD features (no entity columns) on a LUKE directory: the three-input path, with
    luke_squad_v1.yaml's freeze list (the entity table comes out bit-identical)."""
    folder, files, model_dir = setup
    builder, _, _, dev, _, level = WORD_RUNS["squad"]
    data, out = folder / "squad_train", folder / "squad_out"
    made = run("create_data.py", *builder, "--input", files["squad_train"], "--model_dir", model_dir, "--output", data)
    assert made.returncode == 0, made.stderr[-2000:]
    assert "entity_ids" not in json.loads((data / "manifest.json").read_text())["columns"]
    tuned = run("run_finetune.py", "--config", "configs/tasks/luke_squad_v1.yaml", "--model_dir", model_dir,
                f"data_dir={data}", f"eval_file={files[dev]}", f"output_dir={out}", *TRAINING, "train_steps=300",
                "eval_steps=100", "save_checkpoint_steps=100")
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    state = json.loads((out / "model_best" / "trainer_state.json").read_text())
    assert state["best_metric"] >= level
    scored = run("run_eval.py", "--task", "squad_v1", "--model_dir", out / "model_best", "--data", files[dev],
                 "--output_dir", out / "eval")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert json.loads(scored.stdout)["f1"] == pytest.approx(state["best_metric"], abs=1e-9)
    start = read_weights(str(model_dir / "model.safetensors"))
    tuned_weights = read_weights(str(out / "model_best" / "model.safetensors"))
    table = "backbone.entity_embeddings.entity_embeddings.embedding_table"
    assert np.array_equal(tuned_weights[table], start[table])
    assert not np.array_equal(tuned_weights["backbone.embeddings.word_embeddings.embedding_table"],
                              start["backbone.embeddings.word_embeddings.embedding_table"])


def test_a_freeze_pattern_matching_nothing_stops_the_run_with_one_line(setup, tmp_path):
    folder, files, model_dir = setup
    data = folder / "open_entity_train"
    if not data.exists():
        made = run("create_data.py", "open_entity", *RUNS["open_entity"][0], "--input", files["open_entity_train"],
                   "--model_dir", model_dir, "--output", data)
        assert made.returncode == 0, made.stderr[-2000:]
    tuned = run("run_finetune.py", "--config", "configs/tasks/luke_open_entity.yaml", "--model_dir", model_dir,
                f"data_dir={data}", "eval_file=null", f"output_dir={tmp_path / 'out'}",
                "freeze=['*entity_embeddings.entity_embeddings.*', '*entity_tabel*']")
    assert tuned.returncode == 2
    assert tuned.stderr.strip().splitlines()[-1].startswith(
        "error: freeze: pattern '*entity_tabel*' matches no trainable parameter of the model")
    assert not (tmp_path / "out" / "model_last").exists()
