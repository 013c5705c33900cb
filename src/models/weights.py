"""Weights on disk (safetensors or MindSpore .ckpt) and in a Cell, under the project's names.

Files always hold the names of a model with a head (`backbone.` + backbone names, then the
head's own); a bare Backbone reads and writes the `backbone.` part.
"""
import os
import tempfile
from typing import Dict, List, Tuple

import mindspore as ms
import numpy as np
from mindspore import Parameter, nn, ops

from src.errors import UserError

WEIGHT_FILES = ("model.safetensors", "model.ckpt")
FORMATS = {"safetensors": "model.safetensors", "ckpt": "model.ckpt"}
BACKBONE_PREFIX = "backbone."


def read_weights(path: str) -> Dict[str, np.ndarray]:
    """Name -> array from a .safetensors or .ckpt file (neither format can run code)."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: weights file not found")
    try:
        if path.endswith(".safetensors"):
            from safetensors.numpy import load_file
            return dict(load_file(path))
        if path.endswith(".ckpt"):
            return {k: v.asnumpy() for k, v in ms.load_checkpoint(path).items()}
    except Exception as err:  # both readers raise assorted types on a corrupt file
        raise UserError(f"{path}: not a readable weights file ({type(err).__name__})") from None
    raise UserError(f"{path}: expected a .safetensors or .ckpt weights file")


def write_weights(arrays: Dict[str, np.ndarray], path: str) -> None:
    """Write name -> array atomically: a temporary file in the same folder, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    suffix = ".safetensors" if path.endswith(".safetensors") else ".ckpt"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        if suffix == ".safetensors":
            _save_safetensors(arrays, tmp)
        else:
            ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in arrays.items()],
                               tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _save_safetensors(arrays: Dict[str, np.ndarray], path: str) -> None:
    """safetensors' writer, its I/O failures (disk full, size limit) raised as OSError like any other write."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    try:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, path)
    except SafetensorError as err:
        if "I/O error" not in str(err):
            raise
        raise OSError(str(err).rsplit(": ", 1)[-1].split(" (os error")[0]) from None


def find_weights(model_dir: str) -> str:
    """The weights file of a model directory (safetensors preferred)."""
    for name in WEIGHT_FILES:
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            return path
    raise UserError(f"{model_dir}: no weights file (expected one of {', '.join(WEIGHT_FILES)})")


def _file_name(cell: nn.Cell, name: str) -> str:
    from src.models.backbone import Backbone
    return BACKBONE_PREFIX + name if isinstance(cell, Backbone) else name


def weights_of(cell: nn.Cell) -> List[Tuple[str, Parameter]]:
    """(file name, parameter) of the cell's weights; the dropout key is per-run state."""
    return [(_file_name(cell, name), p) for name, p in cell.parameters_and_names()
            if p.requires_grad]


def cell_arrays(cell: nn.Cell) -> Dict[str, np.ndarray]:
    """The cell's weights under their file names."""
    return {key: p.asnumpy() for key, p in weights_of(cell)}


def load_into(cell: nn.Cell, arrays: Dict[str, np.ndarray], source: str,
              fresh_ok: Tuple[str, ...] = ()) -> Tuple[List[str], List[str]]:
    """Copy arrays into the cell's parameters; returns (newly initialised, unused) names.

    A missing backbone weight (unless under a `fresh_ok` prefix) or any wrong shape is the
    user's error; a head the file lacks keeps its fresh initialisation (fine-tuning).
    """
    fresh, wrong = [], []
    for key, param in weights_of(cell):
        if key not in arrays:
            fresh.append(key)
        elif tuple(arrays[key].shape) != tuple(param.shape):
            wrong.append(f"{key} {tuple(arrays[key].shape)} vs expected {tuple(param.shape)}")
    missing = [k for k in fresh if k.startswith(BACKBONE_PREFIX) and not k.startswith(fresh_ok)]
    if wrong or missing:
        listed = "; ".join(wrong + [f"{k} missing" for k in missing][:20])
        raise UserError(f"{source}: weights do not fit the config: {listed}")
    for key, param in weights_of(cell):
        if key in arrays:
            # in place: a graph compiled before keeps reading this buffer (set_data would swap it)
            ops.assign(param, ms.Tensor(arrays[key], dtype=param.dtype))
    used = {key for key, _ in weights_of(cell)}
    return fresh, sorted(set(arrays) - used)
