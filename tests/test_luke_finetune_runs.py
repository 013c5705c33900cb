"""LUKE fine-tuning end to end on generated files: a tiny random LUKE directory (byte-level BPE + entity
vocabulary) -> create_data.py open_entity | tacred | conll_spans | squad -> run_finetune.py (scored on the
raw dev file, best checkpoint kept) -> run_eval.py --model_dir, which scores the best checkpoint alike; SQuAD
through the LUKE seed's script names; the SQuAD glue's seven- and three-input paths."""
import json
import os
import shutil
import subprocess

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from entity_task_files import ENTITIES, wiki_pages, write_entity_tasks
from src.data.entities.mention_build import create_mention_db
from src.data.entities.mention_db import MentionOptions
from src.config import load_config
from src.data.tokenization import load_tokenizer
from src.models import build_model, load_pretrained, save_pretrained
from src.models.config import ModelConfig
from src.models.weights import read_weights
from src.tasks.finetune import FinetuneConfig, task_spec
from src.errors import UserError
from src.tasks.question_answering import QuestionAnswering, model_inputs, recorded_linker
from src.training.losses import span_loss
from task_files import write_all
from test_finetune_runs import ROOT, TRAINING, run
from tiny_tokenizers import train_luke
from wiki_dumps import write_dump

# name: (create_data options, task config, the level a learnt rule reaches, train steps)
RUNS = {
    "open_entity": (["--max_seq_length", "32"], "luke_open_entity", 0.9, 240),
    "tacred": (["--max_seq_length", "40"], "luke_tacred", 0.9, 240),
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
    scored = run("run_eval.py", "--task", name, "--model_dir", out / "model_best", "--data",
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


def script(name, *args):
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3")
    return subprocess.run(["bash", f"scripts/{name}.sh", *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT)


def test_squad_scripts_run_luke_as_roberta_with_its_entity_table_frozen(setup):
    """The LUKE seed's SQuAD scripts on a tiny LUKE: features without entity columns (no mention DB), so the
    model takes the three word inputs; luke_squad_v1.yaml's freeze list keeps the entity table bit-identical."""
    folder, files, model_dir = setup
    squad_dir, data, out = folder / "squad", folder / "luke_squad", folder / "squad_out"
    squad_dir.mkdir()
    for split in ("train", "dev"):
        shutil.copy(files[f"squad_{split}"], squad_dir / f"{split}-v1.1.json")
    made = script("run_squad_data_process", model_dir, squad_dir, data, "--max_seq_length", "64", "--doc_stride",
                  "32", "--max_query_length", "16")
    assert made.returncode == 0, made.stderr[-2000:]
    manifests = {split: json.loads((data / split / "manifest.json").read_text()) for split in ("train", "dev")}
    assert manifests["train"]["split"] == "train" and manifests["dev"]["split"] == "eval"
    assert "entity_ids" not in manifests["train"]["columns"]
    tuned = script("run_squad_standalone_train", "CPU", model_dir, data / "train", squad_dir / "dev-v1.1.json",
                   f"output_dir={out}", *TRAINING, "train_steps=150", "eval_steps=50", "save_checkpoint_steps=50")
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    state = json.loads((out / "model_best" / "trainer_state.json").read_text())
    assert state["best_metric"] >= 90.0
    scored = script("run_squad_eval", out / "model_best", squad_dir / "dev-v1.1.json", out / "eval")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert json.loads(scored.stdout)["f1"] == pytest.approx(state["best_metric"], abs=1e-9)
    assert (out / "eval" / "predictions.json").is_file()
    start = read_weights(str(model_dir / "model.safetensors"))
    tuned_weights = read_weights(str(out / "model_best" / "model.safetensors"))
    changed = {name for name in start if not np.array_equal(tuned_weights[name], start[name])}
    assert "backbone.entity_embeddings.entity_embeddings.embedding_table" not in changed
    # no entity reaches the model, so the other entity tables change by AdamW's weight decay alone
    assert {"backbone.entity_embeddings.position_embeddings.embedding_table",
            "backbone.embeddings.word_embeddings.embedding_table", "backbone.encoder.layers.1.attention.qkv.weight"} <= changed


def test_entity_linked_squad_feeds_seven_inputs_and_learns(setup):
    """SQuAD features linked through a tiny mention DB (--mention_db): the model takes its seven inputs in
    training and on the raw dev file (linked as the training file was); F1 >= 90, the entity table frozen
    while the rest of the entity embeddings train, and run_squad_eval.sh reproduces the best score."""
    folder, files, model_dir = setup
    dump = write_dump(folder / "wiki.xml.bz2", wiki_pages(), {})
    create_mention_db(str(folder / "mentions"), MentionOptions(min_link_prob=0.0), str(folder / "wiki.db"), str(dump))
    squad_dir, data, out = folder / "linked_squad", folder / "luke_linked", folder / "linked_out"
    squad_dir.mkdir()
    for split in ("train", "dev"):
        shutil.copy(files[f"squad_{split}"], squad_dir / f"{split}-v1.1.json")
    made = script("run_squad_data_process", model_dir, squad_dir, data, "--max_seq_length", "64", "--doc_stride",
                  "32", "--max_query_length", "16", "--mention_db", folder / "mentions")
    assert made.returncode == 0, made.stderr[-2000:]
    manifest = json.loads((data / "train" / "manifest.json").read_text())
    assert "entity_ids" in manifest["columns"] and manifest["entities"]["counts"]["kept"] >= 250
    tuned = script("run_squad_standalone_train", "CPU", model_dir, data / "train", squad_dir / "dev-v1.1.json",
                   f"output_dir={out}", *TRAINING, "train_steps=150", "eval_steps=50", "save_checkpoint_steps=50")
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    spec = json.loads((out / "model_best" / "task.json").read_text())
    assert spec["entity_inputs"] and spec["entities"]["mention_db"] == str(folder / "mentions")
    state = json.loads((out / "model_best" / "trainer_state.json").read_text())
    assert state["best_metric"] >= 90.0
    scored = script("run_squad_eval", out / "model_best", squad_dir / "dev-v1.1.json", out / "eval")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert json.loads(scored.stdout)["f1"] == pytest.approx(state["best_metric"], abs=1e-9)
    start = read_weights(str(model_dir / "model.safetensors"))
    tuned_weights = read_weights(str(out / "model_best" / "model.safetensors"))
    table = "backbone.entity_embeddings.entity_embeddings.embedding_table"
    assert np.array_equal(tuned_weights[table], start[table])
    dense = "backbone.entity_embeddings.entity_embedding_dense.weight"  # trains only when entities reach it
    assert np.abs(tuned_weights[dense] - start[dense]).max() > 1e-3


def test_scripts_say_their_usage_and_the_distributed_one_plans_the_run(setup):
    folder, files, model_dir = setup
    for name in ("run_squad_data_process", "run_squad_standalone_train", "run_squad_distribute_train",
                 "run_squad_eval"):
        helped, bare = script(name, "--help"), script(name)
        assert helped.returncode == 0 and helped.stdout.startswith(f"usage: bash scripts/{name}.sh"), name
        assert bare.returncode == 2 and bare.stderr == helped.stdout, name
    planned = script("run_squad_distribute_train", "--dry_run", "--log_dir", folder / "logs", "2", "CPU", model_dir,
                     folder, files["squad_dev"], "seed=1")
    assert planned.returncode == 0, planned.stderr
    command = json.loads(planned.stdout)["command"]
    assert command[:2] == ["msrun", "--worker_num=2"] and command[-6:] == [
        os.path.join(ROOT, "configs/tasks/luke_squad_v1.yaml"), "device_target=CPU", f"model_dir={model_dir}",
        f"data_dir={folder}", f"eval_file={files['squad_dev']}", "seed=1"]
    data_plan = script("run_squad_data_process", "--dry_run", model_dir, folder, folder / "out", "--mention_db", "m")
    lines = data_plan.stdout.splitlines()
    assert data_plan.returncode == 0 and len(lines) == 2
    assert lines[1].endswith(f"--output {folder}/out/dev --split eval --max_seq_length 512 --doc_stride 128 "
                             "--max_query_length 64 --mention_db m")


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


def test_squad_glue_feeds_entity_columns_when_the_features_have_them(setup):
    """Entity-linked SQuAD features (columns entity_ids, entity_position_ids, ...) reach a LUKE model as its
    seven inputs; plain features as three."""
    _, _, model_dir = setup
    words = {name: {"type": "int32", "shape": [16]} for name in ("input_ids", "input_mask", "segment_ids")}
    entities = {name: {"type": "int32", "shape": [2]} for name in ("entity_ids", "entity_segment_ids",
                                                                   "entity_attention_mask")}
    entities["entity_position_ids"] = {"type": "int32", "shape": [2, 30]}
    config = FinetuneConfig(task="squad", dataset="squad_v1")
    plain = QuestionAnswering(task_spec(config, {"columns": words}))
    linked = QuestionAnswering(task_spec(config, {"columns": {**words, **entities}}))
    assert plain.columns == ("input_ids", "input_mask", "segment_ids", "start_positions", "end_positions")
    assert linked.columns == ("input_ids", "input_mask", "segment_ids", "entity_ids", "entity_attention_mask",
                              "entity_segment_ids", "entity_position_ids", "start_positions", "end_positions")
    assert model_inputs({**words, **entities}) == linked.columns[:7] and model_inputs(words) == plain.columns[:3]
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 300, (2, 16)).astype(np.int32)
    ids[:, 0] = 0
    positions = np.full((2, 2, 30), -1, np.int32)
    positions[:, 0, :2], positions[:, 1, 0] = [3, 4], 7
    batch = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids),
             "entity_ids": np.array([[2, 3]] * 2, np.int32), "entity_attention_mask": np.ones((2, 2), np.int32),
             "entity_segment_ids": np.zeros((2, 2), np.int32), "entity_position_ids": positions,
             "start_positions": np.array([3, 5], np.int32), "end_positions": np.array([4, 9], np.int32)}
    model = load_pretrained(str(model_dir), head="question_answering")
    losses = {}
    for name, task in (("plain", plain), ("linked", linked)):
        arrays = [Tensor(batch[column]) for column in task.columns]
        expected = span_loss(*model(*arrays[:-2]), *arrays[-2:])
        losses[name] = float(task.loss_function(model)(*arrays).asnumpy())
        assert losses[name] == pytest.approx(float(expected.asnumpy()), abs=1e-6)
        assert float(ms.jit(task.loss_function(model))(*arrays).asnumpy()) == pytest.approx(losses[name], abs=1e-5)
    assert abs(losses["plain"] - losses["linked"]) > 1e-6  # the entities did reach the model


def test_luke_squad_config_holds_the_seeds_hyper_parameters():
    config = load_config(FinetuneConfig, "configs/tasks/luke_squad_v1.yaml")
    assert (config.task, config.dataset, config.learning_rate, config.batch_size, config.num_train_epochs,
            config.warmup_ratio, config.beta1, config.beta2, config.eps, config.weight_decay, config.seed,
            config.n_best_size, config.max_answer_length) == ("squad", "squad_v1", 12e-6, 2, 2, 0.09, 0.9, 0.98,
                                                              1e-6, 0.01, 14, 20, 30)
    assert config.freeze == ["*entity_embeddings.entity_embeddings.*"]


def test_dev_linking_refuses_another_entity_vocabulary(setup):
    _, _, model_dir = setup
    record = {"mention_db": "unused", "model_redirects": None, "options": {},
              "entity_vocab": {"file": "/elsewhere/entity_vocab.json", "fingerprint": "0" * 64}}
    with pytest.raises(UserError, match="not the entity vocabulary the SQuAD features were linked with "
                                        r"\(/elsewhere/entity_vocab.json\)"):
        recorded_linker(record, load_tokenizer(model_dir))
    assert recorded_linker(None, load_tokenizer(model_dir)) is None
