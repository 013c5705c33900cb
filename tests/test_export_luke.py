"""export.py for LUKE: the seven inputs, every head's MINDIR (static, and --dynamic at two shapes
with different entity counts) and ONNX (through onnxruntime) equal the eager model on padded
words and padded entities; a static export pads fewer entities and shorter mentions with the
entity [PAD] id, mask 0, type 0, positions -1, and refuses more entities in one line; predict.py
and run_eval.py --exported give the model directory's predictions."""
import json

import numpy as np
import pytest

from hf_models import make_hf_model, sample_entities
from src.deploy.exporter import ExportRequest, export_model
from src.deploy.runtime import load_exported
from src.deploy.signature import DEFAULT_CHOICES
from src.errors import UserError
from src.models import load_pretrained
from src.models.conversion import convert
from test_export import assert_close, eager, run
from tiny_tokenizers import train_luke

HEADS = (None, "masked_lm", "entity_classification", "entity_pair_classification",
         "entity_span_classification", "question_answering", "token_classification",
         "sequence_classification", "multiple_choice")
# The default run: the heads whose graphs differ most (entity logits, span gathers);
# every head under -m slow.
DEFAULT = ("masked_lm", "entity_span_classification")
SLOW = tuple(head for head in HEADS if head not in DEFAULT)
VOCAB = 300  # byte-level BPE's alphabet and specials take 261
# [PAD] is not entity 0 here, so nothing may assume it
ENTITIES = ["[UNK]", "[PAD]", "[MASK]", "[MASK2]", "Paris", "Tokyo"]
BATCH, LENGTH, ENTITY_COUNT, MENTION = 3, 16, 4, 3
STATIC_ENTITIES, STATIC_MENTION = 6, 4  # larger than the inputs: the runtime pads both


def luke_dir(folder, head):
    """A tiny LUKE directory converted from a random transformers LukeFor<head> (every weight
    randomised), with a BPE tokenizer and an entity vocabulary."""
    make_hf_model("luke", head, str(folder / "hf"), vocab_size=VOCAB + 2)  # + <ent>, <ent2>
    convert(str(folder / "hf"), str(folder / "ours"))
    train_luke(["Paris and Tokyo are cities", "the lazy dog sleeps"] * 10, folder / "ours", VOCAB, ENTITIES)
    return str(folder / "ours")


def luke_inputs(head, batch, length, entities, mention, seed=1):
    """Padded words (rows after the first cut at random lengths) and padded entities (the last
    ones of later rows), mentions of 1..mention tokens; multiple choice: four choices a row."""
    rng = np.random.default_rng(seed)
    choices = (DEFAULT_CHOICES,) if head == "multiple_choice" else ()
    rows = batch * (choices[0] if choices else 1)
    ids = rng.integers(5, VOCAB, (rows, length)).astype(np.int32)
    mask = np.ones_like(ids)
    for row in range(1, rows):
        mask[row, rng.integers(mention + 2, length + 1):] = 0
    ids[mask == 0] = 1  # LUKE's word [PAD]
    arrays = [ids, mask, np.zeros_like(ids),
              *sample_entities(mask, entities, mention, seed + 1, vocab=23, pad_id=1)]
    return [a.reshape((batch, *choices) + a.shape[1:]) for a in arrays]


def export(model_dir, head, file_format, stem, **sizes):
    return load_exported(export_model(ExportRequest(model_dir, file_format, str(stem), head=head, **sizes))[-2])


def check_head(folder, head):
    model_dir = luke_dir(folder, head)
    model = load_pretrained(model_dir, head)
    static = dict(batch_size=BATCH, seq_length=LENGTH, max_entity_length=STATIC_ENTITIES,
                  max_mention_length=STATIC_MENTION)
    inputs = luke_inputs(head, BATCH, LENGTH, ENTITY_COUNT, MENTION)
    expected = eager(model, inputs)
    for file_format in ("MINDIR", "ONNX"):
        exported = export(model_dir, head, file_format, folder / file_format, **static)
        assert [s.name for s in exported.inputs][3:] == ["entity_ids", "entity_attention_mask",
                                                         "entity_token_type_ids", "entity_position_ids"]
        assert exported.inputs[-1].dims[-2:] == (STATIC_ENTITIES, STATIC_MENTION)
        assert_close(exported, expected, inputs)
    dynamic = export(model_dir, head, "MINDIR", folder / "dynamic", dynamic=True)
    for batch, length, entities, mention in ((BATCH, LENGTH, ENTITY_COUNT, MENTION), (2, 9, 2, 2)):
        inputs = luke_inputs(head, batch, length, entities, mention, seed=batch)
        assert_close(dynamic, eager(model, inputs), inputs)


@pytest.mark.parametrize("head", DEFAULT)
def test_luke_exports_equal_the_eager_model(tmp_path, head):
    check_head(tmp_path, head)


@pytest.mark.slow
@pytest.mark.parametrize("head", SLOW)
def test_luke_exports_equal_the_eager_model_every_head(tmp_path, head):
    check_head(tmp_path, head)


def test_static_luke_export_pads_entities_and_refuses_more(tmp_path):
    """The sidecar names the entity inputs and outputs; fewer entities and shorter mentions are
    padded with the vocabulary's [PAD] id, mask 0, type 0, positions -1; more entities than the
    graph holds are one line, from the runtime and from export.py's flags. The word inputs alone
run with padding entities."""
    model_dir = luke_dir(tmp_path, None)
    stem = tmp_path / "out" / "luke"
    result = run("export.py", "--model_dir", model_dir, "--file_format", "MINDIR", "--file_name", stem,
                 "--batch_size", "2", "--seq_length", "12", "--max_entity_length", "5",
                 "--max_mention_length", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "out" / "luke.json").read_text())
    assert (record["entity_pad_id"], record["max_entity_length"], record["max_mention_length"]) == (1, 5, 4)
    assert [(s["name"], s["shape"]) for s in record["inputs"][3:]] == [
        ("entity_ids", [2, 5]), ("entity_attention_mask", [2, 5]), ("entity_token_type_ids", [2, 5]),
        ("entity_position_ids", [2, 5, 4])]
    assert [(s["name"], s["shape"]) for s in record["outputs"]] == [
        ("sequence_output", [2, 12, 32]), ("pooled_output", [2, 32]), ("entity_sequence_output", [2, 5, 32])]
    assert (tmp_path / "out" / "entity_vocab.json").is_file()
    exported = load_exported(str(stem) + ".mindir")
    fed = []
    graph = exported._forward
    exported._forward = lambda arrays: fed.append(arrays) or graph(arrays)
    inputs = luke_inputs(None, 2, 12, 3, 2)
    outputs = exported.run(inputs)
    assert [o.shape for o in outputs] == [(2, 12, 32), (2, 32), (2, 3, 32)]
    ids, mask, types, positions = fed[0][3:]
    assert (ids[:, 3:] == 1).all() and (mask[:, 3:] == 0).all() and (types[:, 3:] == 0).all()
    assert (positions[:, 3:] == -1).all() and (positions[:, :, 2:] == -1).all()
    np.testing.assert_array_equal(positions[:, :3, :2], inputs[6])
    words = inputs[:3]  # a word task's rows: no entities, as the model without entity inputs
    (sequence, pooled, entities), expected = exported.run(words), eager(load_pretrained(model_dir), words)
    np.testing.assert_allclose(sequence, expected[0], atol=1e-4, rtol=0)
    np.testing.assert_allclose(pooled, expected[1], atol=1e-4, rtol=0)
    assert entities.shape == (2, 0, 32)
    with pytest.raises(UserError, match=r"entity_ids of shape \[2, 6\].*exported for \[2, 5\] "
                                        r"\(export with --dynamic or a larger --max_entity_length\)"):
        exported.run(luke_inputs(None, 2, 12, 6, 2))
    bad = run("export.py", "--model_dir", model_dir, "--file_name", tmp_path / "x", "--max_entity_length", "0")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --max_entity_length 0: expected 1 or more"
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob(".tmp-*"))


PREDICT_INPUTS = {
    "entity_classification": [("Paris and Tokyo are cities", [[0, 5]]), ("the lazy dog sleeps", [[4, 12]])],
    "entity_pair_classification": [("Paris and Tokyo are cities", [[0, 5], [10, 15]]),
                                   ("the lazy dog sleeps", [[13, 19], [0, 3]])],
    "entity_span_classification": [("Paris and Tokyo are cities", [[0, 5], [10, 15], [0, 15], [20, 26]]),
                                   ("the lazy dog sleeps", [[4, 12]])],
}


@pytest.mark.parametrize("head, file_format", [("entity_span_classification", "ONNX"),
                                               pytest.param("entity_classification", "MINDIR", marks=pytest.mark.slow),
                                               pytest.param("entity_pair_classification", "ONNX",
                                                            marks=pytest.mark.slow)])
def test_predict_entity_heads_with_an_export_equals_the_model_directory(tmp_path, head, file_format):
    """predict.py's path for LUKE: text with character entity spans -> the same types, relation or
    span labels and the same probabilities within 1e-5, from the export and the directory."""
    from src.deploy.predictions import open_model, predict_file
    from test_export import assert_same_prediction
    model_dir = luke_dir(tmp_path, head)
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"text": text, "entity_spans": spans}) + "\n"
                              for text, spans in PREDICT_INPUTS[head]))
    expected = predict_file(open_model(model_dir), str(inputs), 4)
    assert len(expected) == 2
    graph = export_model(ExportRequest(model_dir, file_format, str(tmp_path / "graph"), 3, 32,
                                       max_entity_length=6, max_mention_length=8))[-2]
    exported = open_model(graph)
    assert_same_prediction(predict_file(exported, str(inputs), 4), expected)
    inputs.write_text(json.dumps({"text": "Paris", "entity_spans": [[0, 5, 1]]}) + "\n")
    with pytest.raises(UserError, match="record 1: expected entity_spans as"):
        predict_file(exported, str(inputs), 4)
    inputs.write_text(json.dumps({"text": "Paris and Tokyo", "entity_spans": [[0, 5]] * 2 + [[10, 15]] * 5}) + "\n")
    refusal = ("record 1: entity spans beyond 32 tokens or 6 entities" if head == "entity_span_classification"
               else r"record 1: entity_\w+ takes \d entity span\(s\); got 7")
    with pytest.raises(UserError, match=refusal):
        predict_file(exported, str(inputs), 4)


@pytest.mark.slow
@pytest.mark.parametrize("head, text", [("sequence_classification", "Paris and Tokyo\nthe lazy dog\n"),
                                        ("masked_lm", "Paris <mask> Tokyo\nthe <mask> dog\n")])
def test_predict_luke_word_heads_with_an_export_equals_the_model_directory(tmp_path, head, text):
    """A word task on a LUKE graph (the word inputs alone, padding entities): the same labels or
    top tokens from MINDIR, ONNX and the directory (the model without entity inputs)."""
    from src.deploy.predictions import open_model, predict_file
    from test_export import assert_same_prediction
    model_dir = luke_dir(tmp_path, head)
    inputs = tmp_path / "inputs.txt"
    inputs.write_text(text)
    expected = predict_file(open_model(model_dir), str(inputs), 4)
    for file_format in ("MINDIR", "ONNX"):
        graph = export_model(ExportRequest(model_dir, file_format, str(tmp_path / file_format), 2, 32,
                                           max_entity_length=3, max_mention_length=4))[-2]
        assert_same_prediction(predict_file(open_model(graph), str(inputs), 4), expected)


def test_run_eval_of_an_exported_span_ner_model_equals_the_model_directory(tmp_path):
    """A LUKE span-NER checkpoint (task.json of conll_spans): run_eval.py --exported gives the
    predictions file and scores of --model_dir; the export's entity lengths are task.json's."""
    from src.data.tasks.conll_spans import read_conll_documents, span_labels
    from test_entity_task_data import CONLL
    dev = tmp_path / "dev.conll"
    dev.write_text(CONLL)
    labels = span_labels(read_conll_documents(str(dev)))
    make_hf_model("luke", "entity_span_classification", str(tmp_path / "hf"), vocab_size=VOCAB + 2,
                  num_labels=len(labels))
    model_dir = tmp_path / "checkpoint"
    convert(str(tmp_path / "hf"), str(model_dir))
    train_luke(CONLL.split() * 10, model_dir, VOCAB, ENTITIES)
    options = {"max_seq_length": 32, "max_entity_length": 8, "max_mention_length": 6, "context": "sentence"}
    (model_dir / "task.json").write_text(json.dumps({"task": "conll_spans", "dataset": "conll2003",
                                                     "labels": labels, "options": options}))
    reference = run("run_eval.py", "--task", "conll_spans", "--model_dir", model_dir, "--data", dev,
                    "--output_dir", tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    exported = run("export.py", "--model_dir", model_dir, "--file_format", "ONNX", "--file_name",
                   tmp_path / "spans", "--batch_size", "4")
    assert exported.returncode == 0, exported.stderr[-3000:]
    record = json.loads((tmp_path / "spans.json").read_text())
    assert record["inputs"][-1]["shape"] == [4, 8, 6] and record["labels"] == labels
    scored = run("run_eval.py", "--task", "conll_spans", "--exported", tmp_path / "spans.onnx", "--data", dev,
                 "--output_dir", tmp_path / "exported")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert scored.stdout == reference.stdout and "f1" in json.loads(reference.stdout)
    assert (tmp_path / "exported" / "predictions.txt").read_text() == \
        (tmp_path / "reference" / "predictions.txt").read_text()
