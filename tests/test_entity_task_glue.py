"""The LUKE entity tasks' glue without a LUKE model (the model lands with the LUKE model issue): configs,
registry and head names, the losses against torch, and each evaluation's alignment and scoring on oracle
logits standing in for the model's."""
import numpy as np
import pytest
import torch
from mindspore import Tensor, nn

from src.config import load_config
from src.data.tasks.task_records import load_task_columns
from src.data.tasks.conll_spans import create_conll_span_data
from src.data.tasks.entity_features import EntityTaskOptions
from src.data.tasks.open_entity import create_open_entity_data
from src.data.tasks.tacred import create_tacred_data
from src.data.tokenization import load_tokenizer
from src.metrics.classification import primary_metric
from src.tasks.finetune import FinetuneConfig
from src.tasks.registry import task_class
from src.training.losses import multi_label_loss, token_loss
from test_entity_task_data import CONLL, OPEN_ENTITY, TACRED, _write, luke_dir  # noqa: F401 (fixture)

TASKS = {"open_entity": "entity_classification", "tacred": "entity_pair_classification",
         "conll_spans": "entity_span_classification"}


@pytest.mark.parametrize("config, task", [("luke_open_entity", "open_entity"), ("luke_tacred", "tacred"),
                                          ("luke_conll2003", "conll_spans")])
def test_configs_load_and_name_registered_tasks(config, task):
    loaded = load_config(FinetuneConfig, f"configs/tasks/{config}.yaml")
    assert loaded.task == task and loaded.learning_rate == 1e-5 and loaded.warmup_ratio == 0.06
    assert task_class(task, config).head == TASKS[task]
    assert primary_metric(loaded.dataset) == "f1"


def test_multi_label_loss_equals_torch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 9)).astype(np.float32) * 4
    labels = (rng.random((5, 9)) < 0.4).astype(np.int32)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(labels).float())
    assert float(multi_label_loss(Tensor(logits), Tensor(labels)).asnumpy()) == pytest.approx(float(expected), abs=1e-5)


def test_span_loss_ignores_padding_spans_as_transformers():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 4, 5)).astype(np.float32)
    labels = np.array([[0, 3, -1, -1], [4, 1, 0, -1]], dtype=np.int32)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits).view(-1, 5), torch.tensor(labels).long().view(-1),
                                                 ignore_index=-1)
    assert float(token_loss(Tensor(logits), Tensor(labels)).asnumpy()) == pytest.approx(float(expected), abs=1e-5)


def _evaluation(task, manifest, tokenizer, path):
    spec = {"task": task, "dataset": manifest["dataset"], "labels": manifest["labels"],
            "options": manifest["options"]}
    return task_class(task, "test")(spec).evaluation(tokenizer, str(path), 8)


def _oracle(evaluation, logits):
    """Score `logits` as if the model had predicted them for the evaluation's rows."""
    assert len(evaluation.columns["input_ids"]) == len(logits)
    evaluation.predict = lambda model, inputs: [logits]
    return evaluation(model=None)


def test_typing_evaluation_scores_oracle_and_shifted_logits(tmp_path, luke_dir):  # noqa: F811
    source = _write(tmp_path / "dev.json", OPEN_ENTITY)
    manifest = create_open_entity_data(str(source), str(luke_dir), str(tmp_path / "train"),
                                       EntityTaskOptions(24, 1))
    evaluation = _evaluation("open_entity", manifest, load_tokenizer(luke_dir), source)
    gold = evaluation.columns["label_ids"]
    assert _oracle(evaluation, np.where(gold > 0, 3.0, -3.0)) == {"eval_precision": 1.0, "eval_recall": 1.0,
                                                                   "eval_f1": 1.0}
    everything = _oracle(evaluation, np.ones(gold.shape))
    assert everything["eval_recall"] == 1.0 and everything["eval_precision"] == pytest.approx(5 / 36)
    written = evaluation.write_predictions(str(tmp_path))
    assert len(open(written[0]).read().splitlines()) == len(OPEN_ENTITY)


def test_relation_evaluation_leaves_no_relation_out(tmp_path, luke_dir):  # noqa: F811
    source = _write(tmp_path / "dev.json", TACRED)
    manifest = create_tacred_data(str(source), str(luke_dir), str(tmp_path / "train"), EntityTaskOptions(48, 2))
    evaluation = _evaluation("tacred", manifest, load_tokenizer(luke_dir), source)
    gold = evaluation.columns["label_ids"]
    assert _oracle(evaluation, np.eye(42)[gold])["eval_f1"] == 1.0
    none = _oracle(evaluation, np.eye(42)[np.zeros_like(gold)])  # always no_relation: nothing predicted
    assert none == {"eval_precision": 0.0, "eval_recall": 0.0, "eval_f1": 0.0}


def test_span_evaluation_decodes_rows_back_into_sentences(tmp_path, luke_dir):  # noqa: F811
    source = _write(tmp_path / "dev.txt", CONLL)
    options = EntityTaskOptions(64, 4, 30, context="document")
    manifest = create_conll_span_data(str(source), str(luke_dir), str(tmp_path / "train"), options)
    evaluation = _evaluation("conll_spans", manifest, load_tokenizer(luke_dir), source)
    labels = evaluation.columns["label_ids"]
    oracle = np.eye(len(manifest["labels"]))[np.maximum(labels, 0)] * 5
    assert _oracle(evaluation, oracle) == {"eval_precision": 1.0, "eval_recall": 1.0, "eval_f1": 1.0}
    assert evaluation.predicted[0] == ["B-ORG", "O", "B-MISC", "O", "O"]
    written = open(evaluation.write_predictions(str(tmp_path))[0]).read()
    assert "Peter B-PER B-PER" in written  # the file's IOB1 I-PER read as BIO
    tokenizer = load_tokenizer(luke_dir)
    longest = max(len(tokenizer.backend.encode(" " + word, add_special_tokens=False).ids)
                  for word in ("EU", "German", "Peter", "Blackburn", "BRUSSELS"))
    short = create_conll_span_data(str(source), str(luke_dir), str(tmp_path / "short"),
                                   EntityTaskOptions(64, 4, longest, context="sentence"))
    assert short["handled"]["gold_entities_not_candidates"] == 1  # Peter Blackburn: two words, too long
    evaluation = _evaluation("conll_spans", short, tokenizer, source)
    oracle = np.eye(len(short["labels"]))[np.maximum(evaluation.columns["label_ids"], 0)] * 5
    scores = _oracle(evaluation, oracle)
    assert scores["eval_precision"] == 1.0 and scores["eval_recall"] == pytest.approx(3 / 4)


class InputsChecking(nn.Cell):
    """Stands in for a LUKE head: checks it is called with the seven inputs in LUKE's order, returns logits."""

    def __init__(self, logits):
        super().__init__()
        self.logits = Tensor(logits)

    def construct(self, input_ids, attention_mask, token_type_ids, entity_ids, entity_attention_mask,
                  entity_token_type_ids, entity_position_ids):
        assert input_ids.shape == attention_mask.shape == token_type_ids.shape
        assert entity_ids.shape == entity_attention_mask.shape == entity_token_type_ids.shape
        assert entity_position_ids.ndim == 3 and entity_position_ids.shape[:2] == entity_ids.shape
        assert int(entity_position_ids.min()) == -1 and int(attention_mask.max()) == 1
        return self.logits


@pytest.mark.parametrize("task", ["open_entity", "tacred", "conll_spans"])
def test_loss_functions_feed_the_columns_in_the_models_order(tmp_path, luke_dir, task):  # noqa: F811
    builders = {"open_entity": (create_open_entity_data, OPEN_ENTITY, "train.json", EntityTaskOptions(24, 1)),
                "tacred": (create_tacred_data, TACRED, "train.json", EntityTaskOptions(48, 2)),
                "conll_spans": (create_conll_span_data, CONLL, "train.txt", EntityTaskOptions(64, 4, 30))}
    create, content, name, options = builders[task]
    manifest = create(str(_write(tmp_path / name, content)), str(luke_dir), str(tmp_path / "out"), options)
    glue = task_class(task, "test")({"labels": manifest["labels"], "options": manifest["options"]})
    batch = load_task_columns(str(tmp_path / "out"), list(glue.columns))
    labels = batch["label_ids"]
    shape = labels.shape if task == "open_entity" else labels.shape + (len(manifest["labels"]),)
    logits = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    loss = glue.loss_function(InputsChecking(logits))(*(Tensor(column) for column in glue.prepare(batch)))
    expected = glue.objective(Tensor(logits), Tensor(labels))
    assert np.isfinite(float(loss.asnumpy())) and float(loss.asnumpy()) == float(expected.asnumpy())
