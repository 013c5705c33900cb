"""The trainer: loss falls, checkpoints and logs, exact resume after SIGKILL, skipped
non-finite steps, accumulation, and optimizers/schedules against numpy references."""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import mindspore as ms
from mindspore import Parameter, Tensor

from src.errors import UserError
from src.models.weights import cell_arrays, read_weights
from src.training import checkpoints
from src.training.config import TrainConfig
from src.training.optimizers import build_optimizer, sum_of_squares
from src.training.schedules import learning_rates
from src.training.step import TrainStep
from train_tiny import make_trainer

HERE = os.path.dirname(os.path.abspath(__file__))


def config(tmp_path, **kw):
    values = dict(output_dir=str(tmp_path / "run"), batch_size=4, train_steps=12,
                  learning_rate=2e-3, warmup_steps=2, save_checkpoint_steps=4,
                  save_checkpoint_num=2, logging_steps=1)
    values.update(kw)
    return TrainConfig(**values)


def test_loss_falls_and_outputs_are_written(tmp_path):
    trainer = make_trainer(config(tmp_path, train_steps=60, save_checkpoint_steps=20,
                                  warmup_steps=5, learning_rate=1e-2))
    trainer.train()
    run = tmp_path / "run"
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 60 and np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    assert (run / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("checkpoint-")) == \
        ["checkpoint-0000040", "checkpoint-0000060"]
    assert os.readlink(run / "model_last") == "checkpoint-0000060"
    assert (run / "model_last" / "config.yaml").exists()
    state = json.loads((run / "model_last" / "trainer_state.json").read_text())
    assert state == {"step": 60, "micro_batches": 60, "skipped_steps": 0,
                     "best_metric": None, "best_step": None}


class StallingSource:
    """Wraps a source; from the `after`-th batch on, each batch takes `delay_s` to arrive."""

    def __init__(self, source, after, delay_s):
        self.source, self.after, self.delay_s = source, after, delay_s
        self.batches_per_epoch = source.batches_per_epoch
        self.served = 0

    def batches(self, epoch, skip):
        for batch in self.source.batches(epoch, skip):
            self.served += 1
            if self.served > self.after:
                time.sleep(self.delay_s)
            yield batch


def test_metrics_show_the_share_of_time_spent_waiting_for_data(tmp_path):
    trainer = make_trainer(config(tmp_path, train_steps=9, logging_steps=3,
                                  save_checkpoint_steps=9))
    trainer.source = StallingSource(trainer.source, after=6, delay_s=0.5)
    trainer.train()
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    shares = {r["step"]: r["data_wait_share"] for r in rows}
    # steps 4-6 (compiled, batches in memory) hardly wait; steps 7-9 wait 0.5 s for each batch
    assert shares[6] < 0.3 and shares[9] > 0.7, shares


class ScriptedEvaluation:
    """Returns the given metric values in turn, so the best step is known in advance."""

    def __init__(self, values):
        self.values = iter(values)

    def __call__(self):
        return {"eval_f1": next(self.values), "eval_exact": 0.0}


@pytest.mark.parametrize("greater, best_step", [(True, 8), (False, 20)])
def test_best_checkpoint_is_kept_and_loaded_at_end(tmp_path, greater, best_step):
    # eval at steps 4, 8, ..., 24; the highest value is at step 8, the lowest at step 20
    cfg = config(tmp_path, train_steps=24, eval_steps=4, save_checkpoint_steps=4,
                 save_checkpoint_num=1, metric_for_best_model="f1", greater_is_better=greater,
                 load_best_model_at_end=True)
    trainer = make_trainer(cfg)
    trainer.evaluate = ScriptedEvaluation([50.0, 90.0, 70.0, 60.0, 10.0, 80.0])
    state = trainer.train()
    run = tmp_path / "run"
    assert state["best_step"] == best_step
    assert os.readlink(run / "model_best") == f"checkpoint-{best_step:07d}"
    assert os.readlink(run / "model_last") == "checkpoint-0000024"
    # save_checkpoint_num=1 prunes every other checkpoint but never the best
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("checkpoint-")) == \
        sorted({f"checkpoint-{best_step:07d}", "checkpoint-0000024"})
    best = read_weights(str(run / "model_best" / "model.safetensors"))
    in_memory = cell_arrays(trainer.model)
    assert all(np.array_equal(best[name], in_memory[name]) for name in best)
    last = read_weights(str(run / "model_last" / "model.safetensors"))
    assert any(not np.array_equal(best[name], last[name]) for name in best)


def test_unknown_best_metric_names_what_evaluation_gives(tmp_path):
    trainer = make_trainer(config(tmp_path, train_steps=4, eval_steps=2,
                                  metric_for_best_model="accuracy"))
    trainer.evaluate = ScriptedEvaluation([1.0, 2.0])
    with pytest.raises(UserError, match="eval_exact, eval_f1"):
        trainer.train()


def final_weights(folder):
    return read_weights(os.path.join(folder, "model_last", "model.safetensors"))


def saved_step(folder):
    """The step model_last points at (0 before the first checkpoint)."""
    try:
        return int(os.readlink(folder / "model_last").rsplit("-", 1)[1])
    except (OSError, IndexError, ValueError):
        return 0


def test_sigkill_and_restart_ends_with_the_same_weights(tmp_path):
    script = os.path.join(HERE, "train_tiny.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    steps = "40"
    subprocess.run([sys.executable, script, str(tmp_path / "whole"), steps], env=env, check=True,
                   capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, script, str(killed), steps], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_at = int(np.random.default_rng().integers(3, 20))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and saved_step(killed) < kill_at:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed_from = json.loads((killed / "model_last" / "trainer_state.json").read_text())["step"]
    assert 0 < resumed_from < int(steps)
    subprocess.run([sys.executable, script, str(killed), steps], env=env, check=True,
                   capture_output=True)
    whole, again = final_weights(tmp_path / "whole"), final_weights(killed)
    assert whole.keys() == again.keys()
    assert max(np.abs(whole[k] - again[k]).max() for k in whole) <= 1e-6
    rows = [json.loads(l) for l in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, int(steps) + 1))
    assert resumed_from >= kill_at


def _limit_file_size(limit):
    """In the child: files may not grow past `limit` bytes, and a write past it fails (EFBIG)
    instead of killing the process, as a full disk fails a write."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_during_checkpoint_is_one_clear_line_and_keeps_the_previous(tmp_path):
    script = os.path.join(HERE, "train_tiny.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    run = tmp_path / "run"
    subprocess.run([sys.executable, script, str(run), "3"], env=env, check=True, capture_output=True)
    weights = (run / "model_last" / "model.safetensors").stat().st_size
    full = subprocess.run([sys.executable, script, str(run), "6"], env=env, capture_output=True,
                          text=True, preexec_fn=_limit_file_size(weights // 2))
    assert full.returncode == 2
    last_line = full.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and "cannot write checkpoint-0000004" in last_line
    assert "Traceback" not in full.stderr
    assert os.readlink(run / "model_last") == "checkpoint-0000003"
    assert not [p.name for p in run.iterdir() if p.name.startswith(".tmp")]
    again = subprocess.run([sys.executable, script, str(run), "6"], env=env, capture_output=True)
    assert again.returncode == 0 and os.readlink(run / "model_last") == "checkpoint-0000006"


def test_too_little_disk_space_fails_before_training(tmp_path, monkeypatch):
    trainer = make_trainer(config(tmp_path))
    needed = checkpoints.checkpoint_size(trainer.model, trainer.optimizer)
    params = sum(int(np.prod(p.shape)) for p in trainer.model.trainable_params())
    assert 3 * params * 4 <= needed  # weights and both Adam moments, float32
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checkpoints.shutil, "disk_usage",
                        lambda path: usage._replace(free=2 * needed - 1))
    with pytest.raises(UserError, match="MiB free; a checkpoint takes about"):
        trainer.train()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_crash_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    trainer = make_trainer(config(tmp_path, train_steps=8))
    trainer.train()
    original = checkpoints.save_pretrained

    def crash(model, folder, *args):
        original(model, folder, *args)
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(checkpoints, "save_pretrained", crash)
    trainer = make_trainer(config(tmp_path, train_steps=12))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    run = tmp_path / "run"
    assert os.readlink(run / "model_last") == "checkpoint-0000008"
    assert not (run / "checkpoint-0000012").exists()
    assert not [p for p in os.listdir(run) if p.startswith(".tmp")]
    monkeypatch.setattr(checkpoints, "save_pretrained", original)
    resumed = make_trainer(config(tmp_path, train_steps=12))
    resumed.resume()
    assert resumed.state["step"] == 8


def test_non_finite_step_is_skipped(tmp_path):
    trainer = make_trainer(config(tmp_path, train_steps=1, enable_lossscale=True,
                                  loss_scale_value=1024.0))
    before = {p.name: p.asnumpy().copy() for p in trainer.model.trainable_params()}
    batch = next(trainer.source.batches(0, 0))
    poisoned = list(batch)
    poisoned[5] = Tensor(np.full(batch[5].shape, np.nan, np.float32))
    loss, applied = trainer.step_fn.run([tuple(poisoned)])
    assert not applied and not np.isfinite(loss)
    assert all(np.array_equal(p.asnumpy(), before[p.name]) for p in trainer.model.trainable_params())
    assert float(trainer.step_fn.loss_scale.scale.asnumpy()) == 512.0
    assert int(trainer.optimizer.global_step.asnumpy()[0]) == 0
    loss, applied = trainer.step_fn.run([batch])
    assert applied and np.isfinite(loss)


@pytest.mark.parametrize("optimizer", ["adamw", "lamb"])
def test_accumulation_equals_a_larger_batch(tmp_path, optimizer):
    small = make_trainer(config(tmp_path, batch_size=2, accumulation_steps=2, optimizer=optimizer),
                         dropout=0.0)
    large = make_trainer(config(tmp_path, batch_size=4, accumulation_steps=1, optimizer=optimizer),
                         dropout=0.0)
    for p, q in zip(small.model.trainable_params(), large.model.trainable_params()):
        q.set_data(p.value())
    batches = list(small.source.batches(0, 0))[:2]
    joined = tuple(Tensor(np.concatenate([a.asnumpy(), b.asnumpy()])) for a, b in zip(*batches))
    small.step_fn.run(batches)
    large.step_fn.run([joined])
    for p, q in zip(small.model.trainable_params(), large.model.trainable_params()):
        assert np.abs(p.asnumpy() - q.asnumpy()).max() <= 1e-6, p.name


def test_unwritable_output_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    trainer = make_trainer(config(tmp_path, output_dir=str(blocker / "run")))
    with pytest.raises(UserError, match="cannot write checkpoints there"):
        trainer.train()


def test_schedule_values():
    lrs = learning_rates(10, 1.0, warmup_steps=4, decay="polynomial", power=2.0,
                         end_learning_rate=0.1)
    assert np.allclose(lrs[:4], [0.25, 0.5, 0.75, 1.0])
    assert np.isclose(lrs[4], 1.0)
    assert np.isclose(lrs[7], 0.9 * (1 - 3 / 6) ** 2 + 0.1)
    linear = learning_rates(10, 1.0, warmup_steps=0, decay="linear")
    assert np.allclose(linear, 1 - np.arange(10) / 10)


def numpy_adamweightdecay(w, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-6):
    """Google BERT's AdamWeightDecay: no bias correction, decay added to the update."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (np.sqrt(v) + eps) + wd * w)
    return w


def numpy_adamw(w, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-6):
    """AdamW (Loshchilov & Hutter): bias-corrected Adam plus decoupled weight decay."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * ((m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps) + wd * w)
    return w


def numpy_lamb(w, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-6):
    """LAMB (You et al.): bias-corrected Adam direction plus decay, scaled by ||w|| / ||r||."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        r = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps) + wd * w
        wn, rn = np.linalg.norm(w), np.linalg.norm(r)
        w = w - lr * (wn / rn if wn > 0 and rn > 0 else 1.0) * r
    return w


@pytest.mark.parametrize("shape", [(), (7,), (5, 3), (2, 3, 4)])
def test_sum_of_squares_matches_numpy(shape):
    """The global norm's and LAMB's reduction (rows first), in graph mode, any rank."""
    x = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    got = ms.jit(sum_of_squares)(Tensor(x)).asnumpy()
    assert got.shape == ()
    assert np.isclose(got, (x.astype(np.float64) ** 2).sum(), rtol=1e-6)


@pytest.mark.parametrize("name,reference", [("adamw", numpy_adamw), ("lamb", numpy_lamb),
                                            ("adamweightdecay", numpy_adamweightdecay)])
@pytest.mark.parametrize("param_name,decay", [("layer.weight", 0.1), ("layer.bias", 0.0)])
def test_optimizer_matches_numpy(name, reference, param_name, decay):
    """Matrices decay, biases do not (decay_groups)."""
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(3)]
    param = Parameter(Tensor(w0), name=param_name)
    optimizer = build_optimizer([param], name, np.full(3, 0.01, np.float32), weight_decay=0.1)
    for g in grads:
        optimizer((Tensor(g),))
    expected = reference(w0.astype(np.float64), grads, 0.01, decay)
    assert np.abs(param.asnumpy() - expected).max() < 1e-6


@pytest.mark.parametrize("name,reference", [("adamw", numpy_adamw), ("lamb", numpy_lamb),
                                            ("adamweightdecay", numpy_adamweightdecay)])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_step_unscales_averages_and_clips_like_numpy(name, reference, max_norm):
    """TrainStep folds 1 / (accumulation x loss scale) and the clip into one factor per step;
    the update must equal numpy's: mean gradient, clipped to max_norm, then the optimizer."""
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    xs = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(4)]
    param = Parameter(Tensor(w0), name="layer.weight")
    optimizer = build_optimizer([param], name, np.full(3, 0.01, np.float32), weight_decay=0.1)

    def loss_fn(x):
        return (param * x).sum()
    step = TrainStep(loss_fn, optimizer,
                     TrainConfig(accumulation_steps=2, max_grad_norm=max_norm,
                                 enable_lossscale=True, loss_scale_value=1024.0))
    for pair in (xs[:2], xs[2:]):
        _, applied = step.run([(Tensor(x),) for x in pair])
        assert applied
    grads = []
    for pair in (xs[:2], xs[2:]):
        g = (pair[0].astype(np.float64) + pair[1]) / 2  # d/dw sum(w * x) = x
        grads.append(g * max_norm / max(np.linalg.norm(g), max_norm))
    expected = reference(w0.astype(np.float64), grads, 0.01, 0.1)
    assert np.abs(param.asnumpy() - expected).max() < 1e-6
