"""ModelArts jobs: the zoo's keys on every runner, copies through moxing (a fake one on sys.path,
recording its calls) or a local copier, one copying process per node, checkpoints in the bucket
as they are written, and a SIGKILLed job that resumes from the bucket into a fresh /cache."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from src.cluster.modelarts import ModelArtsConfig, ModelArtsJob, form_overrides
from src.cluster.node_lock import once_per_node
from src.errors import UserError
from test_pretraining_run import ROOT, pretraining_data, weights  # noqa: F401 (a fixture)

FAKE_MOXING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_moxing")


def env(moxing_log=None):
    out = dict(os.environ, GLOG_v="3", PYTHONPATH=ROOT)
    if moxing_log:
        out.update(PYTHONPATH=os.pathsep.join([ROOT, FAKE_MOXING]), FAKE_MOXING_LOG=str(moxing_log))
    return out


def calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def modelarts_args(bucket, cache):
    """What the web form passes (--key=value), with the cache folders moved out of /cache."""
    return ["--enable_modelarts=True", f"--data_url={bucket / 'data'}", f"--train_url={bucket / 'train'}",
            f"--data_path={cache / 'data'}", f"--output_path={cache / 'train'}",
            f"--load_path={cache / 'checkpoint_path'}", "--data_dir=."]


def linked_step(bucket):
    try:
        return int((bucket / "train" / "model_last.link").read_text().rsplit("-", 1)[1])
    except (OSError, IndexError, ValueError):
        return 0


def test_killed_job_resumes_from_the_bucket_and_ends_like_an_unbroken_run(pretraining_data, tmp_path):  # noqa: F811
    bucket = tmp_path / "bucket"
    shutil.copytree(pretraining_data / "data", bucket / "data")
    steps = 12
    run_args = [sys.executable, f"{ROOT}/run_pretrain.py", "--config", str(pretraining_data / "run.yaml"),
                "batch_size=4", f"train_steps={steps}", "save_checkpoint_steps=1"]
    whole = subprocess.run(run_args + [f"output_dir={tmp_path / 'whole'}"], env=env(),
                           capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]

    first_log, second_log = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    proc = subprocess.Popen(run_args + modelarts_args(bucket, tmp_path / "cache1"), env=env(first_log),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_at = int(np.random.default_rng().integers(2, 6))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and linked_step(bucket) < kill_at:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    in_bucket = linked_step(bucket)
    assert kill_at <= in_bucket < steps
    assert ["copy_parallel", str(bucket / "data"), str(tmp_path / "cache1" / "data")] in calls(first_log)
    uploaded = [c[2] for c in calls(first_log) if c[0] == "copy_parallel" and c[2].startswith(str(bucket))]
    assert uploaded[:2] == [str(bucket / "train" / f"checkpoint-000000{s}") for s in (1, 2)]

    again = subprocess.run(run_args + modelarts_args(bucket, tmp_path / "cache2"), env=env(second_log),
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert ["copy_parallel", str(bucket / "train"), str(tmp_path / "cache2" / "train")] in calls(second_log)
    resumed = [line for line in again.stderr.splitlines() if "resumed from" in line]
    assert resumed and resumed[0].endswith(f"at step {in_bucket}")
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "cache2" / "train")
    assert max(np.abs(a[k] - b[k]).max() for k in a) <= 1e-6
    assert linked_step(bucket) == steps
    final = json.loads((bucket / "train" / f"checkpoint-{steps:07d}" / "trainer_state.json").read_text())
    assert final["step"] == steps
    rows = [json.loads(line) for line in (bucket / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    kept = sorted(n for n in os.listdir(bucket / "train") if n.startswith("checkpoint-"))
    assert kept == sorted(n for n in os.listdir(tmp_path / "cache2" / "train") if n.startswith("checkpoint-"))


@pytest.mark.parametrize("runner", ["run_pretrain.py", "run_finetune.py", "run_eval.py", "export.py"])
def test_bucket_url_without_moxing_is_one_line(pretraining_data, tmp_path, runner):  # noqa: F811
    """Every runner takes the keys, and without moxing a bucket is one line before any work."""
    first = {"run_pretrain.py": ["--config", str(pretraining_data / "run.yaml")],
             "run_finetune.py": ["--config", "configs/tasks/squad_v1.yaml"],
             "run_eval.py": ["--task", "squad_v1", "--data", "dev.json"],
             "export.py": ["--model_dir", "model", "--file_name", "model"]}[runner]
    result = subprocess.run([sys.executable, f"{ROOT}/{runner}", *first, "--enable_modelarts=True",
                             "--data_url=obs://bucket/data", f"--output_path={tmp_path}"],
                            env=env(), capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == ("error: data_url obs://bucket/data: copying from a bucket needs moxing "
                             "(ModelArts images have it); off ModelArts give a local folder\n")


def test_run_eval_reads_from_and_writes_to_the_bucket_with_the_local_copier(tmp_path):
    """run_eval off ModelArts (no moxing): its data is copied in, --out lands in train_url."""
    bucket, cache = tmp_path / "bucket", tmp_path / "cache"
    (bucket / "data").mkdir(parents=True)
    (bucket / "data" / "gold.conll").write_text("EU B-ORG B-ORG\nrejects O O\nGerman B-MISC B-PER\n\n")
    result = subprocess.run([sys.executable, f"{ROOT}/run_eval.py", "--task", "ner", "--data", "gold.conll",
                             "--out", "scores.json", "--modelArts", "True",
                             f"--data_url={bucket / 'data'}", f"--train_url={bucket / 'out'}",
                             f"--data_path={cache / 'data'}", f"--output_path={cache / 'train'}"],
                            env=env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    scores = json.loads((bucket / "out" / "scores.json").read_text())
    assert scores == json.loads(result.stdout) and scores["f1"] == 0.5
    assert (cache / "data" / "gold.conll").exists()


def test_export_reads_the_model_from_and_writes_the_graph_to_the_bucket(tmp_path):
    """export.py with the fake moxing: the model comes from checkpoint_url into load_path, the
    graph, sidecar and tokenizer files are written in output_path and copied to train_url."""
    from src.deploy.runtime import load_exported
    from src.models import load_pretrained
    from test_export import eager, padded_inputs, tiny_dir

    bucket, cache, log = tmp_path / "bucket", tmp_path / "cache", tmp_path / "moxing.jsonl"
    model_dir, config = tiny_dir(bucket, "bert", "question_answering")
    result = subprocess.run([sys.executable, f"{ROOT}/export.py", "--file_name", "exports/squad",
                             "--batch_size", "2", "--seq_length", "8", "--enable_modelarts=True",
                             f"--checkpoint_url={model_dir}", f"--train_url={bucket / 'out'}",
                             f"--load_path={cache / 'checkpoint_path'}", f"--output_path={cache / 'train'}"],
                            env=env(log), capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ["copy_parallel", str(model_dir), str(cache / "checkpoint_path")] in calls(log)
    uploaded = sorted(c[2] for c in calls(log) if c[0] == "copy")
    assert uploaded == [str(bucket / "out" / name) for name in
                        ("squad.json", "squad.mindir", "tokenizer_config.json", "vocab.txt")]
    assert not (tmp_path / "exports").exists()
    exported = load_exported(str(bucket / "out" / "squad.mindir"))
    assert exported.record["source"] == str(cache / "checkpoint_path")
    inputs = padded_inputs(config, "question_answering", 2, 8)
    expected = eager(load_pretrained(str(model_dir), "question_answering"), inputs)
    for got, want in zip(exported.run(inputs), expected):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_web_form_arguments_become_overrides():
    assert form_overrides(["--modelArts=True", "--checkpoint_url", "obs://b/luke/", "batch_size=8",
                           "--data_url=obs://b/d"]) == [
        "enable_modelarts=True", "checkpoint_url=obs://b/luke/", "batch_size=8", "data_url=obs://b/d"]
    with pytest.raises(UserError, match="argument '--seed': expected --seed=value"):
        form_overrides(["--seed"])


def test_unknown_modelarts_key_names_the_nearest(pretraining_data):  # noqa: F811
    result = subprocess.run([sys.executable, f"{ROOT}/run_pretrain.py", "--config",
                             str(pretraining_data / "run.yaml"), "--train_ur=obs://b/x"],
                            env=env(), capture_output=True, text=True)
    assert result.returncode == 2 and "unknown key 'train_ur'; did you mean 'train_url'" in result.stderr


def test_paths_point_into_the_cache(tmp_path):
    class Target:
        data_dir, eval_file, model_dir, output_dir, out = "", "dev.json", "/abs/model", "outputs/x", "o/s.json"

    target = Target()
    job = ModelArtsJob(ModelArtsConfig(enable_modelarts=True, data_path=str(tmp_path / "d"),
                                       output_path=str(tmp_path / "t"), load_path=str(tmp_path / "c")))
    job.start(target, data=("data_dir", "eval_file"), load=("model_dir",), output=("output_dir",),
              output_files=("out",))
    assert (target.data_dir, target.eval_file, target.model_dir, target.output_dir, target.out) == (
        str(tmp_path / "d"), str(tmp_path / "d" / "dev.json"), "/abs/model", str(tmp_path / "t"),
        str(tmp_path / "t" / "s.json"))


def test_one_process_per_node_copies_the_others_wait(tmp_path):
    done, copies = [], []

    def copy():
        copies.append(1)
        time.sleep(0.3)

    def worker():
        done.append(once_per_node(str(tmp_path), "job-data", copy, timeout_s=30, poll_s=0.01))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert copies == [1] and sorted(done) == [False, False, False, True]


def test_a_waiting_process_gives_up_after_the_timeout_or_when_the_copier_died(tmp_path):
    (tmp_path / "job-data.lock").write_text(str(os.getpid()))  # alive, never finishes
    with pytest.raises(UserError, match=r"job-data: waited 0 s for process \d+ on this node"):
        once_per_node(str(tmp_path), "job-data", lambda: None, timeout_s=0.2, poll_s=0.01)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "job-ckpt.lock").write_text(str(dead.pid))
    with pytest.raises(UserError, match=f"process {dead.pid}, which was doing it on this node, is gone"):
        once_per_node(str(tmp_path), "job-ckpt", lambda: None, timeout_s=30, poll_s=0.01)


@pytest.mark.slow  # ~25 s: two msrun workers
def test_one_process_per_node_copies_under_msrun(pretraining_data, tmp_path):  # noqa: F811
    """Two workers of one node: after init() one copies the data in, the other waits for it;
    rank 0 alone writes to the bucket."""
    bucket, log = tmp_path / "bucket", tmp_path / "moxing.jsonl"
    shutil.copytree(pretraining_data / "data", bucket / "data")
    result = subprocess.run(["bash", f"{ROOT}/scripts/run_distributed_pretrain.sh", "2", "CPU",
                             str(pretraining_data / "run.yaml"), "batch_size=2",
                             *modelarts_args(bucket, tmp_path / "cache")],
                            env=env(log), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    downloads = [c for c in calls(log) if c[0] == "copy_parallel" and c[1] == str(bucket / "data")]
    assert downloads == [["copy_parallel", str(bucket / "data"), str(tmp_path / "cache" / "data")]]
    assert linked_step(bucket) == 4
    uploads = [c[2] for c in calls(log) if c[0] == "copy_parallel" and c[2].startswith(str(bucket / "train"))]
    assert uploads == [str(bucket / "train" / f"checkpoint-000000{s}") for s in (2, 4)]
