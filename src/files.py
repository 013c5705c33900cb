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
    tmp = scratch_dir(path)
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


def scratch_dir(path: str) -> str:
    """A new temporary folder beside `path` (made with its parent), for output renamed into place;
    a folder that cannot be written is the user's error, named."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        return tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(path)}-")
    except OSError as err:
        raise UserError(f"{parent}: cannot write there ({err.strerror})") from None


def write_text_atomic(path: str, text: str) -> str:
    """Write a text file through a temporary sibling and a rename; a failure names the path."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".tmp-{os.path.basename(path)}-")
    except OSError as err:
        raise UserError(f"{path}: cannot write there ({err.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"{path}: cannot write it ({err.strerror})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
