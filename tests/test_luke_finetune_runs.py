"""LUKE fine-tuning end to end on generated files: a tiny random LUKE directory (byte-level BPE + entity
vocabulary) -> create_data.py open_entity | tacred | conll_spans -> run_finetune.py (scored on the raw
dev file, best checkpoint kept) -> run_eval.py --model_dir, which scores the best checkpoint alike."""
import json

import mindspore as ms
import pytest

from entity_task_files import ENTITIES, write_entity_tasks
from src.data.tokenization import load_tokenizer
from src.models import build_model, save_pretrained
from src.models.config import ModelConfig
from test_finetune_runs import TRAINING, run
from tiny_tokenizers import train_luke

# name: (create_data options, task config, the level a learnt rule reaches, train steps)
RUNS = {
    "open_entity": (["--max_seq_length", "32"], "luke_open_entity", 0.9, 240),
    "tacred": (["--max_seq_length", "40"], "luke_tacred", 0.9, 150),
    "conll_spans": (["--max_seq_length", "32", "--max_entity_length", "64", "--max_mention_length", "6",
                     "--context", "sentence"], "luke_conll2003", 0.9, 150),
}


def tiny_luke(folder):
    """A random tiny LUKE with entity-aware attention and a BPE vocabulary trained on the task files."""
    tokenizer_dir = train_luke(write_entity_tasks(folder / "files")["corpus"] * 3, folder / "tokenizer", 500,
                               ENTITIES)
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
    folder = tmp_path_factory.mktemp("luke_finetune")
    model_dir = tiny_luke(folder)
    return folder, write_entity_tasks(folder / "files"), model_dir


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
