"""Writing outputs so that an interrupted command never leaves one that looks complete."""
import contextlib
import os
import shutil
import tempfile
from typing import Iterator

from src.errors import UserError


@contextlib.contextmanager
def atomic_dir(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary sibling folder to fill; it becomes `path` only if the block succeeds."""
    path = os.path.abspath(path)
    if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path) and not overwrite):
        raise UserError(f"{path}: output exists (pass --overwrite to replace it)")
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(path)}-")
    except OSError as err:
        raise UserError(f"{parent}: cannot write there ({err.strerror})") from None
    try:
        yield tmp
        if os.path.isdir(path):
            old = tempfile.mkdtemp(dir=parent, prefix=f".old-{os.path.basename(path)}-")
            os.replace(path, os.path.join(old, "x"))
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
