"""The portable build: layers built inside `portable()` compute with plain MindSpore ops only.

An exported graph must run on another host and through other converters: it may not hold
the host's fused CPU kernels (Custom aot ops keep a path to a .so), and MindSpore's ONNX
converter has no Unstack and no Erf. The switch is read when a layer is built, so one
backbone gives the fast training graph and the graph export.py writes.
"""
import contextlib
from typing import Iterator

_STATE = {"portable": False, "onnx": False}


@contextlib.contextmanager
def portable(onnx: bool = False) -> Iterator[None]:
    """Layers built in this block use plain ops; with onnx, only ops the ONNX converter maps
    (Transpose for the head moves, erf composed from Exp and arithmetic)."""
    saved = dict(_STATE)
    _STATE.update(portable=True, onnx=onnx)
    try:
        yield
    finally:
        _STATE.update(saved)


def active() -> bool:
    """Whether layers built now must use plain ops (no fused host kernels)."""
    return _STATE["portable"]


def onnx_ops() -> bool:
    """Whether layers built now must use only the ops MindSpore's ONNX converter maps."""
    return _STATE["onnx"]
