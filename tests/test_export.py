"""export.py: MINDIR (static and --dynamic) and ONNX of every family and head equal the eager
model (the host's fused build) on padded batches; bad requests and bad exported files are one
line, exit 2, with nothing half-written."""
import json
import math
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import onnxruntime
import pytest

from src.deploy.exporter import ExportRequest, export_model
from src.deploy.runtime import load_exported
from src.errors import UserError
from src.models import HEADS, build_model, cpu_kernels, load_pretrained, portable, save_pretrained
from src.models.config import load_model_config
from src.models.lean_ops import ExactGELU

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ("bert", "nezha", "albert", "roberta", "ernie")
ALL_HEADS = (None, *HEADS)
# The default run: every family and every head at least once; the rest under -m slow.
DEFAULT = [("bert", "question_answering"), ("nezha", "token_classification"), ("albert", "pretraining"),
           ("roberta", "sequence_classification"), ("ernie", "multiple_choice"), ("roberta", "masked_lm"),
           ("bert", None)]
SLOW = [(family, head) for family in FAMILIES for head in ALL_HEADS if (family, head) not in DEFAULT]
BATCH, LENGTH = 3, 16


def run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3")
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT)


def write_vocab(folder):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(995)]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")


def tiny_dir(folder, family, head, **overrides):
    """A random tiny model of the family with the head (weights saved), and a WordPiece vocabulary."""
    model_dir = folder / f"{family}_{head}"
    config = load_model_config(os.path.join(ROOT, "configs", "models", f"{family}_tiny.yaml"))
    for key, value in overrides.items():
        setattr(config, key, value)
    ms.set_seed(0)
    save_pretrained(build_model(config, head), str(model_dir))
    write_vocab(model_dir)
    return model_dir, config


def padded_inputs(config, head, batch, length, seed=0):
    """Random ids, every row but the first padded after a random length; pair type ids."""
    rng = np.random.default_rng(seed)
    shape = (batch, 4, length) if head == "multiple_choice" else (batch, length)
    ids = rng.integers(5, config.vocab_size, shape).astype(np.int32)
    mask = np.ones(shape, np.int32)
    for row in range(1, batch):
        mask[row, ..., rng.integers(2, length):] = 0
    ids[mask == 0] = config.pad_token_id
    types = np.zeros(shape, np.int32)
    if config.type_vocab_size > 1:
        types[..., length // 2:] = 1
    return [ids, mask, types]


def eager(model, inputs):
    out = ms.jit(model)(*(ms.Tensor(x) for x in inputs))
    return [o.asnumpy() for o in (out if isinstance(out, tuple) else (out,))]


def assert_close(exported, expected, inputs):
    got = exported.run(inputs)
    assert len(got) == len(expected)
    for value, reference in zip(got, expected):
        assert value.shape == reference.shape
        np.testing.assert_allclose(value, reference, atol=1e-4, rtol=0)


def check_family_head(folder, family, head):
    model_dir, config = tiny_dir(folder, family, head)
    model = load_pretrained(str(model_dir), head)
    static = padded_inputs(config, head, BATCH, LENGTH)
    mindir = load_exported(export_model(ExportRequest(str(model_dir), "MINDIR", str(folder / "static"),
                                                      BATCH, LENGTH, head=head))[-2])
    assert_close(mindir, eager(model, static), static)
    dynamic = load_exported(export_model(ExportRequest(str(model_dir), "MINDIR", str(folder / "dynamic"),
                                                       head=head, dynamic=True))[-2])
    for batch, length in ((BATCH, LENGTH), (2, 9)):
        inputs = padded_inputs(config, head, batch, length, seed=batch)
        assert_close(dynamic, eager(model, inputs), inputs)
    onnx = load_exported(export_model(ExportRequest(str(model_dir), "ONNX", str(folder / "graph"),
                                                    BATCH, LENGTH, head=head))[-2])
    assert_close(onnx, eager(model, static), static)
    assert onnx.record["family"] == family and onnx.record["head"] == head


@pytest.mark.parametrize("family, head", DEFAULT)
def test_exports_equal_the_eager_model(tmp_path, family, head):
    check_family_head(tmp_path, family, head)


@pytest.mark.slow
@pytest.mark.parametrize("family, head", SLOW)
def test_exports_equal_the_eager_model_every_family_and_head(tmp_path, family, head):
    check_family_head(tmp_path, family, head)


def test_exported_graph_holds_no_fused_kernel(tmp_path):
    """The graph is the plain-ops model: no Custom aot op naming this host's kernel library
    (which the default CPU build of the same model holds), with no environment variable set."""
    model_dir, _ = tiny_dir(tmp_path, "bert", None)
    paths = export_model(ExportRequest(str(model_dir), "MINDIR", str(tmp_path / "plain"), 2, 8))
    assert b"cpu_kernels" not in open(paths[-2], "rb").read()
    if cpu_kernels.enabled():
        ms.export(load_pretrained(str(model_dir)), *(ms.Tensor(np.ones((2, 8), np.int32)),) * 3,
                  file_name=str(tmp_path / "fused"), file_format="MINDIR")
        assert b"cpu_kernels" in open(tmp_path / "fused.mindir", "rb").read()


def test_onnx_gelu_is_the_exact_erf_form(tmp_path):
    """The ONNX build's GELU (erf composed from Exp) equals x * Phi(x) within 1e-6 over
    [-10, 10]; the tanh form it must not be differs by up to ~5e-4."""
    with portable.portable(onnx=True):
        gelu = ExactGELU()
    x = np.linspace(-10, 10, 4001).astype(np.float32)
    ms.export(gelu, ms.Tensor(x), file_name=str(tmp_path / "gelu"), file_format="ONNX")
    session = onnxruntime.InferenceSession(str(tmp_path / "gelu.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    exact = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.astype(np.float64)])
    np.testing.assert_allclose(got, exact, atol=1e-6, rtol=0)


def test_sidecar_names_what_a_runtime_needs(tmp_path):
    model_dir, _ = tiny_dir(tmp_path, "bert", "token_classification", num_labels=3,
                            label_names=["O", "B-X", "I-X"], use_crf=True)
    paths = export_model(ExportRequest(str(model_dir), "MINDIR", str(tmp_path / "out" / "ner"), 2, 8))
    assert sorted(os.listdir(tmp_path / "out")) == ["ner.json", "ner.mindir", "tokenizer_config.json",
                                                     "vocab.txt"]
    record = json.loads((tmp_path / "out" / "ner.json").read_text())
    assert [spec["name"] for spec in record["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert record["inputs"][0]["shape"] == [2, 8] and record["outputs"][0]["shape"] == [2, 8, 3]
    assert record["labels"] == ["O", "B-X", "I-X"]
    crf = load_pretrained(str(model_dir), "token_classification").crf
    np.testing.assert_allclose(record["crf"]["transitions"], crf.transitions.asnumpy())
    dynamic = export_model(ExportRequest(str(model_dir), "MINDIR", str(tmp_path / "dyn"), dynamic=True))
    assert json.loads(open(dynamic[-1]).read())["inputs"][0]["shape"] == [None, None]
    with pytest.raises(UserError, match="at most 128 tokens"):
        load_exported(dynamic[-2]).run([np.ones((1, 129), np.int32)] * 3)
    assert paths[-1].endswith("ner.json")


def test_bad_requests_and_files_are_one_line_exit_2(tmp_path):
    model_dir, config = tiny_dir(tmp_path, "bert", "question_answering")
    air = run("export.py", "--model_dir", model_dir, "--file_format", "AIR", "--file_name", tmp_path / "x")
    assert air.returncode == 2 and "AIR" in air.stderr and "Ascend" in air.stderr
    assert len(air.stderr.strip().splitlines()) == 1 and not list(tmp_path.glob("x*"))
    with pytest.raises(UserError, match="ONNX converter writes fixed"):
        export_model(ExportRequest(str(model_dir), "ONNX", str(tmp_path / "x"), dynamic=True))
    with pytest.raises(UserError, match="--seq_length 999"):
        export_model(ExportRequest(str(model_dir), "MINDIR", str(tmp_path / "x"), seq_length=999))
    first = export_model(ExportRequest(str(model_dir), "MINDIR", str(tmp_path / "a"), 2, 8))[-2]
    second = export_model(ExportRequest(str(model_dir), "MINDIR", str(tmp_path / "b"), 2, 12))[-2]
    exported = load_exported(first)
    too_long = padded_inputs(config, "question_answering", 2, 9)
    with pytest.raises(UserError, match=r"shape \[2, 9\].*exported for \[2, 8\]"):
        exported.run(too_long)
    shorter = load_exported(second)  # a static export pads shorter rows and cuts its outputs back
    assert_close(shorter, eager(load_pretrained(str(model_dir), "question_answering"), too_long), too_long)
    (tmp_path / "a.json").replace(tmp_path / "b.json")
    with pytest.raises(UserError, match="does not match b.mindir"):
        load_exported(second)
    with pytest.raises(UserError, match="no sidecar"):
        load_exported(first)
    (tmp_path / "notes.onnx").write_text("not a graph")
    with pytest.raises(UserError, match="no sidecar"):
        load_exported(str(tmp_path / "notes.onnx"))
    with pytest.raises(UserError, match="not an exported graph"):
        load_exported(str(model_dir / "model.safetensors"))


def test_a_failed_export_leaves_nothing(tmp_path, monkeypatch):
    """A failure after the graph is written leaves no graph, sidecar, tokenizer or temp file."""
    import src.deploy.exporter as exporter
    model_dir, _ = tiny_dir(tmp_path, "bert", None)
    out = tmp_path / "out"
    out.mkdir()

    def broken(*args):
        raise UserError("disk full")
    monkeypatch.setattr(exporter, "write_tokenizer", broken)
    with pytest.raises(UserError, match="disk full"):
        export_model(ExportRequest(str(model_dir), "MINDIR", str(out / "model"), 1, 8))
    assert os.listdir(out) == []
    monkeypatch.undo()
    (out / "vocab.txt").write_text("another tokenizer\n")
    with pytest.raises(UserError, match="another tokenizer's file"):
        export_model(ExportRequest(str(model_dir), "MINDIR", str(out / "model"), 1, 8))
    assert os.listdir(out) == ["vocab.txt"]


PREDICT_INPUTS = {
    "question_answering": "".join(json.dumps({"question": f"w{i} w5?", "context": " ".join(
        f"w{j}" for j in range(i, i + 150))}) + "\n" for i in (6, 300)),  # two windows each
    "sequence_classification": "w5 w6 w7\nw8 w9\tw10 w11\n",
    "token_classification": '{"tokens": ["w5", "w6", "w7"]}\n{"tokens": ["w8"]}\n',
    "masked_lm": "w5 [MASK] w7\n[MASK] w8 [MASK]\n",
}


# one format each: test_exports_equal_the_eager_model proves both formats' numbers
@pytest.mark.parametrize("head, file_format", [("question_answering", "ONNX"), ("masked_lm", "MINDIR"),
                                               ("sequence_classification", "MINDIR"),
                                               ("token_classification", "ONNX")])
def test_predict_with_an_export_equals_the_model_directory(tmp_path, head, file_format):
    """predict.py's path: raw inputs -> the same answers, labels, tags (CRF) or top tokens, and the
    same probabilities within 1e-5, from the exported file and the model directory."""
    from src.deploy.predictions import open_model, predict_file
    labels = {"num_labels": 3, "label_names": ["O", "B-X", "I-X"], "use_crf": True}
    model_dir, _ = tiny_dir(tmp_path, "bert", head, **(labels if head != "question_answering" else {}))
    inputs = tmp_path / "inputs.txt"
    inputs.write_text(PREDICT_INPUTS[head])
    expected = predict_file(open_model(str(model_dir)), str(inputs), 4)
    assert len(expected) == 2
    graph = export_model(ExportRequest(str(model_dir), file_format, str(tmp_path / "graph"), 3))[-2]
    assert_same_prediction(predict_file(open_model(graph), str(inputs), 4), expected)  # both at 128


def assert_same_prediction(one, reference):
    """Equal texts, labels and tags, at any depth of lists and dicts; floats within 1e-5."""
    if isinstance(reference, float):
        assert one == pytest.approx(reference, abs=1e-5)
    elif isinstance(reference, (list, dict)):
        assert type(one) is type(reference) and len(one) == len(reference)
        keys = reference.keys() if isinstance(reference, dict) else range(len(reference))
        for key in keys:
            assert_same_prediction(one[key], reference[key])
    else:
        assert one == reference
