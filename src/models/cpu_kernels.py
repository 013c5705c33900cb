"""Fused float32 CPU kernels (GELU exact and tanh, layer norm, attention softmax, dropout,
sum of squares) as MindSpore Custom "aot" ops.

On MindSpore's CPU backend the exact GELU is a chain of ~15 elementwise kernels forward
and backward (erf, exp, multiplies, adds), LayerNormGrad runs ~9 ms per 1024x768 call and
the dropout hash is ~12 int32 ops that keep scratch; GELU and layer norm alone were ~0.3 s
of a 2 s BERT-base training step (benchmarks/README.md, "Speed"). One vectorised C++ loop
each does the same work in a pass or two.

cpu_kernels.cc is compiled with the system C++ compiler on first use (g++ or $CXX, ~2 s)
into a cache keyed by the source, flags and CPU, written atomically so concurrent ranks
can build at once. Used only when the device target is CPU and outside a portable build
(portable.py: what export.py builds); if there is no compiler, or BERT_CPU_KERNELS=0 is
set, the layers fall back to their plain-ops formulas, which compute the same values.
"""
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import mindspore as ms
from mindspore import ops

from src.models import portable

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_kernels.cc")
FLAGS = ("-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-shared", "-fPIC")
SWITCH = "BERT_CPU_KERNELS"
CACHE = "BERT_KERNEL_CACHE"


def library() -> Optional[str]:
    """Path of the built kernel library, or None where the plain-ops formulas should run."""
    if (portable.active() or os.environ.get(SWITCH, "1") == "0"
            or ms.get_context("device_target") != "CPU"):
        return None
    return _built()


def enabled() -> bool:
    """Whether layers built now should run the fused kernels."""
    return library() is not None


def like_first_input(first, *rest):
    """Shape or dtype inference of a kernel whose output is like its first input."""
    return first


def one_value(*inputs):
    """Shape inference of a kernel that reduces its input to one value."""
    return [1]


def custom_op(name: str, out_shape=like_first_input, out_dtype=like_first_input) -> ops.Custom:
    """The Custom op running `name` from the library (call only when library() is set)."""
    return ops.Custom(f"{library()}:{name}", out_shape=out_shape, out_dtype=out_dtype,
                      func_type="aot")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(os.environ.get(CACHE) or os.path.join(base, "bert-family-ms", "kernels"))


def _cpu_flags() -> str:
    """The CPU's feature flags: -march=native code must not be reused on another CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


@functools.lru_cache(maxsize=None)
def _built() -> Optional[str]:
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        logger.warning("no C++ compiler found (g++ or $CXX): fused CPU kernels off, "
                       "GELU, layer norm, softmax, dropout and the gradient norm run as plain "
                       "ops (slower)")
        return None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(),
                                     platform.machine().encode(), _cpu_flags().encode()]))
    target = _cache_dir() / f"cpu_kernels-{key.hexdigest()[:16]}.so"
    if target.exists():
        return str(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            built = os.path.join(scratch, target.name)
            subprocess.run([compiler, *FLAGS, "-o", built, str(SOURCE)], check=True,
                           capture_output=True, text=True, timeout=300)
            os.replace(built, target)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        logger.warning("building %s failed, fused CPU kernels off: %s", SOURCE.name,
                       detail.strip().splitlines()[-1] if detail.strip() else error)
        return None
    logger.info("built fused CPU kernels: %s", target)
    return str(target)
