"""Checkpoints that survive kills: each one a complete folder, renamed into place when whole.

output_dir/checkpoint-0000100/  a model directory (config.yaml, model.safetensors, tokenizer)
                                plus optimizer.ckpt (moments, global step, loss scale) and
                                trainer_state.json (step, data position, counters)
output_dir/model_last -> checkpoint-0000100   a symlink, swapped atomically after each save
output_dir/model_best -> checkpoint-0000060   the best by the evaluation metric (never pruned)
"""
import json
import os
import shutil
from typing import Dict, List, Optional

import mindspore as ms
import numpy as np
from mindspore import nn

from src.errors import UserError
from src.files import atomic_dir
from src.models import save_pretrained
from src.models.weights import find_weights, load_into, read_weights
from src.data.entities.vocab import ENTITY_VOCAB_FILES
from src.data.tokenization import TOKENIZER_FILES

LAST = "model_last"
BEST = "model_best"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.ckpt"


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:07d}"


def _state_params(optimizer: nn.Optimizer, extra: List[ms.Parameter]) -> List[ms.Parameter]:
    """The optimizer's own state (moments, global step) plus loss-scale state; the learning
    rate schedule is not state: a resumed run follows its own config's schedule."""
    model_ids = {id(p) for p in optimizer.parameters}
    own = [p for name, p in optimizer.parameters_and_names()
           if id(p) not in model_ids and not name.startswith("learning_rate")]
    return own + extra


def save_checkpoint(output_dir: str, step: int, model: nn.Cell, optimizer: nn.Optimizer,
                    extra: List[ms.Parameter], state: Dict, tokenizer_dir: Optional[str],
                    keep: int, best: bool = False, files: Optional[Dict[str, str]] = None) -> str:
    """Write checkpoint-<step> whole, point model_last (and model_best if `best`) at it,
    keep the newest `keep` plus the best."""
    name = checkpoint_name(step)
    try:
        _write_checkpoint(os.path.join(output_dir, name), model, optimizer, extra, state,
                          tokenizer_dir, files)
    except OSError as err:  # disk full, quota, file size limit: the previous checkpoint stays
        raise UserError(f"{output_dir}: cannot write {name} ({err.strerror or err}); model_last still "
                        "points at the previous checkpoint") from None
    _point(output_dir, LAST, name)
    if best:
        _point(output_dir, BEST, name)
    _prune(output_dir, keep, {name, _target(output_dir, BEST)})
    return os.path.join(output_dir, name)


def _write_checkpoint(folder: str, model: nn.Cell, optimizer: nn.Optimizer,
                      extra: List[ms.Parameter], state: Dict, tokenizer_dir: Optional[str],
                      files: Optional[Dict[str, str]]) -> None:
    """Fill a temporary folder with weights, tokenizer, optimizer state and trainer state; rename it
    to `folder` only when all are written."""
    with atomic_dir(folder, overwrite=True) as tmp:
        save_pretrained(model, tmp)
        copy_tokenizer(tokenizer_dir, tmp)
        ms.save_checkpoint([{"name": p.name, "data": p.value()}
                            for p in _state_params(optimizer, extra)],
                           os.path.join(tmp, OPTIMIZER_FILE))
        with open(os.path.join(tmp, STATE_FILE), "w", encoding="utf-8") as f:
            json.dump(state, f, indent=2)
        for name_in_dir, text in (files or {}).items():
            with open(os.path.join(tmp, name_in_dir), "w", encoding="utf-8") as f:
                f.write(text)


def _point(output_dir: str, link_name: str, name: str) -> None:
    """Swap the symlink output_dir/link_name to `name` atomically."""
    link = os.path.join(output_dir, link_name)
    tmp_link = link + ".tmp"
    if os.path.lexists(tmp_link):
        os.remove(tmp_link)
    os.symlink(name, tmp_link)
    os.replace(tmp_link, link)


def _target(output_dir: str, link_name: str) -> Optional[str]:
    """The checkpoint folder name a link points at, if it exists."""
    link = os.path.join(output_dir, link_name)
    return os.readlink(link) if os.path.islink(link) else None


def copy_tokenizer(tokenizer_dir: Optional[str], dst: str) -> None:
    """Put the tokenizer files beside the weights so the folder is a full model directory."""
    if not tokenizer_dir:
        return
    for name in TOKENIZER_FILES + ENTITY_VOCAB_FILES + ("tokenizer_config.json",):
        src = os.path.join(tokenizer_dir, name)
        if os.path.isfile(src):
            shutil.copy(src, os.path.join(dst, name))


def _prune(output_dir: str, keep: int, protected: set) -> None:
    names = sorted(n for n in os.listdir(output_dir) if n.startswith("checkpoint-"))
    for name in names[:-keep] if keep > 0 else []:
        if name not in protected:
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def last_checkpoint(output_dir: str, link_name: str = LAST) -> Optional[str]:
    """The folder model_last (or another link) points at, if a run left one."""
    link = os.path.join(output_dir, link_name)
    return os.path.realpath(link) if os.path.isdir(link) else None


def load_checkpoint(folder: str, model: nn.Cell, optimizer: nn.Optimizer,
                    extra: List[ms.Parameter]) -> Dict:
    """Restore weights, optimizer and loss-scale state; returns the trainer state."""
    path = find_weights(folder)
    load_into(model, read_weights(path), path)
    saved = ms.load_checkpoint(os.path.join(folder, OPTIMIZER_FILE))
    for param in _state_params(optimizer, extra):
        if param.name not in saved:
            raise UserError(f"{folder}: optimizer state lacks {param.name} (was it written by "
                            "another optimizer or model?)")
        param.set_data(ms.Tensor(saved[param.name].asnumpy().astype(
            ms.dtype_to_nptype(param.dtype))))
    with open(os.path.join(folder, STATE_FILE), encoding="utf-8") as f:
        return json.load(f)


def check_space(output_dir: str, checkpoint_bytes: int) -> None:
    """Fail before training when the disk cannot hold two checkpoints (the new one is written whole
    beside the last before the older is pruned)."""
    free = shutil.disk_usage(output_dir).free
    if free < 2 * checkpoint_bytes:
        raise UserError(f"{output_dir}: {free / 2**20:,.0f} MiB free; a checkpoint takes about "
                        f"{checkpoint_bytes / 2**20:,.0f} MiB and two must fit while the newest is written")


def checkpoint_size(model: nn.Cell, optimizer: nn.Optimizer) -> int:
    """Bytes of a checkpoint's weights and optimizer state."""
    params = list(model.get_parameters()) + _state_params(optimizer, [])
    return sum(int(np.prod(p.shape)) * np.dtype(ms.dtype_to_nptype(p.dtype)).itemsize for p in params)


def check_writable(output_dir: str) -> None:
    """Fail before training when the output folder cannot be written."""
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = os.path.join(output_dir, ".write-test")
        with open(probe, "wb") as f:
            f.write(np.zeros(1024, np.uint8).tobytes())
        os.remove(probe)
    except OSError as err:
        raise UserError(f"{output_dir}: cannot write checkpoints there ({err.strerror})") from None
