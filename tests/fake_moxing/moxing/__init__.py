"""A stand-in for ModelArts' moxing on sys.path: `mox.file` between local folders (an object
store has no symlinks, so folders are copied with their links followed), each call appended to
the JSON-lines file named by FAKE_MOXING_LOG."""
import json
import os
import shutil


def _record(call: str, *args) -> None:
    log = os.environ.get("FAKE_MOXING_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps([call, *args]) + "\n")


class _File:
    def copy_parallel(self, src_url, dst_url):
        _record("copy_parallel", src_url, dst_url)
        shutil.copytree(src_url, dst_url, dirs_exist_ok=True)

    def copy(self, src_url, dst_url):
        _record("copy", src_url, dst_url)
        os.makedirs(os.path.dirname(dst_url), exist_ok=True)
        shutil.copyfile(src_url, dst_url)

    def remove(self, path, recursive=False):
        _record("remove", path)
        if os.path.isdir(path) and recursive:
            shutil.rmtree(path)
        else:
            os.remove(path)

    def exists(self, path):
        _record("exists", path)
        return os.path.exists(path)


file = _File()
