"""Copying between OBS buckets and local folders: moxing on ModelArts, shutil elsewhere."""
import os
import re
import shutil
import tempfile
from typing import Mapping, Protocol

from src.errors import UserError


class Copier(Protocol):
    """What a ModelArts job needs of a file system: folders and files copied, removed, tested."""

    def copy_dir(self, src: str, dst: str) -> None: ...

    def copy_file(self, src: str, dst: str) -> None: ...

    def remove(self, url: str) -> None: ...

    def exists(self, url: str) -> bool: ...


class MoxCopier:
    """ModelArts' moxing (`mox.file`), which reads and writes obs:// URLs and local paths alike."""

    def __init__(self, mox):
        self.file = mox.file

    def copy_dir(self, src: str, dst: str) -> None:
        self.file.copy_parallel(src, dst)

    def copy_file(self, src: str, dst: str) -> None:
        self.file.copy(src, dst)

    def remove(self, url: str) -> None:
        self.file.remove(url, recursive=True)

    def exists(self, url: str) -> bool:
        return self.file.exists(url)


class LocalCopier:
    """The same operations on local paths, so a ModelArts flow runs off ModelArts."""

    def copy_dir(self, src: str, dst: str) -> None:
        shutil.copytree(src, dst, dirs_exist_ok=True)

    def copy_file(self, src: str, dst: str) -> None:
        """Through a temporary sibling and a rename, as an object store replaces a file whole."""
        os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(dst)), prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(src, tmp)
        shutil.copymode(src, tmp)
        os.replace(tmp, dst)

    def remove(self, url: str) -> None:
        if os.path.isdir(url) and not os.path.islink(url):
            shutil.rmtree(url)
        elif os.path.lexists(url):
            os.remove(url)

    def exists(self, url: str) -> bool:
        return os.path.exists(url)


def is_remote(url: str) -> bool:
    """An object-store URL (obs://, s3://, ...), which only moxing can reach."""
    return bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url)) and not url.startswith("file://")


def copier_for(urls: Mapping[str, str]) -> Copier:
    """moxing when it imports; otherwise a local copier, which cannot reach a bucket URL."""
    try:
        import moxing
    except ImportError:
        for key, url in urls.items():
            if url and is_remote(url):
                raise UserError(f"{key} {url}: copying from a bucket needs moxing (ModelArts "
                                "images have it); off ModelArts give a local folder") from None
        return LocalCopier()
    return MoxCopier(moxing)
