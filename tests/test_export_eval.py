"""run_eval.py --exported: a fine-tuned tiny model exported to MINDIR and to ONNX gives the same
predictions file and the same official scores as run_eval.py --model_dir on the raw dev file;
predict.py tags raw sentences alike with the export and the directory."""
import json

import pytest

from task_files import write_all
from test_finetune_runs import RUNS, TRAINING, run, tiny_model

STEPS = 30


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export_eval")
    files = write_all(folder / "files")
    return folder, files, tiny_model(folder, files, "bert")


def fine_tuned(folder, files, model_dir, name):
    """A short fine-tuning run of the task; its last checkpoint, with task.json."""
    builder, config, extra, dev, _, _ = RUNS[name]
    data, out = folder / f"{name}_train", folder / f"{name}_out"
    made = run("create_data.py", *builder, "--input", files[dev.replace("_dev", "_train")],
               "--model_dir", model_dir, "--output", data)
    assert made.returncode == 0, made.stderr[-2000:]
    tuned = run("run_finetune.py", "--config", f"configs/tasks/{config}.yaml", "--model_dir", model_dir,
                f"data_dir={data}", "eval_file=null", f"output_dir={out}", *TRAINING, f"train_steps={STEPS}",
                f"save_checkpoint_steps={STEPS}", *extra)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    return out / "model_last", config, files[dev]


def check_exported_equals_model_dir(folder, files, model_dir, name, predictions):
    checkpoint, task, dev = fine_tuned(folder, files, model_dir, name)
    reference = run("run_eval.py", "--task", task, "--model_dir", checkpoint, "--data", dev,
                    "--output_dir", folder / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    for file_format, options in (("MINDIR", ["--batch_size", "8"]), ("ONNX", ["--batch_size", "5"])):
        stem = folder / "exports" / f"{name}_{file_format}"
        exported = run("export.py", "--model_dir", checkpoint, "--file_format", file_format,
                       "--file_name", stem, *options)
        assert exported.returncode == 0, exported.stderr[-3000:]
        graph = f"{stem}.{file_format.lower()}"
        scored = run("run_eval.py", "--task", task, "--exported", graph, "--data", dev,
                     "--output_dir", folder / file_format)
        assert scored.returncode == 0, scored.stderr[-3000:]
        assert scored.stdout == reference.stdout
        assert (folder / file_format / predictions).read_text() == \
            (folder / "reference" / predictions).read_text()
    return checkpoint, json.loads(reference.stdout)


def test_ner_crf_export_scores_as_the_model_directory(setup):
    folder, files, model_dir = setup
    checkpoint, scores = check_exported_equals_model_dir(folder / "ner", files, model_dir, "ner_crf",
                                                         "predictions.txt")
    assert 0 < scores["f1"] <= 1
    sentences = folder / "ner" / "sentences.txt"
    sentences.write_text("anna smith lives in paris\nred blue\nboris king cold oslo warm\n")
    tagged = {}
    for model in (checkpoint, folder / "ner" / "exports" / "ner_crf_MINDIR.mindir"):
        out = folder / "ner" / f"tags_{model.suffix or 'dir'}.jsonl"
        done = run("predict.py", "--model", model, "--input", sentences, "--output", out)
        assert done.returncode == 0, done.stderr[-3000:]
        tagged[model.suffix] = [json.loads(line) for line in out.read_text().splitlines()]
    assert tagged[".mindir"] == tagged[""]
    assert [len(row["tags"]) for row in tagged[""]] == [5, 2, 5]
    labels = json.loads((checkpoint / "task.json").read_text())["labels"]
    assert all(tag in labels for row in tagged[""] for tag in row["tags"])


@pytest.mark.slow  # ~20 s; the default run has the NER+CRF one
def test_squad_export_scores_as_the_model_directory(setup):
    folder, files, model_dir = setup
    _, scores = check_exported_equals_model_dir(folder / "squad", files, model_dir, "squad",
                                                "predictions.json")
    assert scores["f1"] > 0
    out = folder / "squad" / "answers.jsonl"
    done = run("predict.py", "--model", folder / "squad" / "exports" / "squad_ONNX.onnx",
               "--input", files["squad_dev"], "--output", out)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = {row["id"]: row["answer"] for row in map(json.loads, out.read_text().splitlines())}
    assert answers == json.loads((folder / "squad" / "reference" / "predictions.json").read_text())
