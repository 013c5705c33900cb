"""ModelArts jobs with the model zoo's keys: inputs copied from OBS into /cache before the run
(one process per node), each checkpoint copied to train_url as it is written, the rest after,
so a job started again with the same train_url resumes where the last one stopped.

In the bucket a symlink (model_last, model_best) is a small NAME.link file holding its target;
it is written after the checkpoint it names, so it only ever names a complete one.
"""
import argparse
import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, fields
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from src.cluster.copiers import copier_for
from src.cluster.node_lock import once_per_node
from src.errors import UserError

logger = logging.getLogger(__name__)
LINK = ".link"
ALIASES = {"modelArts": "enable_modelarts"}  # the LUKE seed's name for it
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class ModelArtsConfig:
    """The zoo's ModelArts keys (every runner takes them), plus how long a process waits for the
    one copying on its node."""

    enable_modelarts: bool = False
    data_url: str = ""                       # OBS folder copied to data_path
    train_url: str = ""                      # OBS folder output_path is copied to (and resumed from)
    checkpoint_url: str = ""                 # OBS folder copied to load_path
    data_path: str = "/cache/data"
    output_path: str = "/cache/train"
    load_path: str = "/cache/checkpoint_path"
    copy_timeout: int = 3600                 # seconds


MODELARTS_KEYS = tuple(f.name for f in fields(ModelArtsConfig))


class ModelArtsJob:
    """With enable_modelarts on: downloads, paths pointed into /cache, uploads; otherwise nothing."""

    def __init__(self, settings):
        self.settings = ModelArtsConfig(**{k: getattr(settings, k) for k in MODELARTS_KEYS})
        self.enabled = self.settings.enable_modelarts
        urls = {k: getattr(self.settings, k) for k in ("data_url", "train_url", "checkpoint_url")}
        self.copier = copier_for(urls) if self.enabled else None
        digest = hashlib.sha1(repr(sorted(urls.items())).encode()).hexdigest()[:12]
        self.job = os.environ.get("MA_JOB_ID") or digest
        self._published: Dict[str, object] = {}

    def start(self, target, world: int = 1, data: Sequence[str] = (), load: Sequence[str] = (),
              output: Sequence[str] = (), output_files: Sequence[str] = ()) -> None:
        """Copy the inputs in (after init(): one process per node, the others wait), then point
        `target`'s path attributes into the cache: relative `data` and `load` paths (empty: the
        folder itself), every `output` folder is output_path, `output_files` go into it."""
        if not self.enabled:
            return
        s = self.settings
        for url, path, step in ((s.data_url, s.data_path, "data"),
                                (s.checkpoint_url, s.load_path, "checkpoint"),
                                (s.train_url, s.output_path, "train")):
            if url:
                self._once(step, world, lambda url=url, path=path: self._download(url, path))
        os.makedirs(s.output_path, exist_ok=True)
        self._published = _signatures(s.output_path)  # what train_url already holds
        _point_paths(target, data, s.data_path)
        _point_paths(target, load, s.load_path)
        for key in output:
            setattr(target, key, s.output_path)
        for key in output_files:
            if getattr(target, key):
                setattr(target, key, os.path.join(s.output_path, os.path.basename(getattr(target, key))))

    def _once(self, step: str, world: int, action) -> None:
        if world == 1:  # nobody to share the copy with
            action()
            return
        # named by job and launch (the launcher's pid): a job started again copies again
        name = f"modelarts-{self.job}-{os.getppid()}-{step}"
        lock_dir = os.path.join(tempfile.gettempdir(), "modelarts-locks")
        once_per_node(lock_dir, name, action, self.settings.copy_timeout)

    def _download(self, url: str, path: str) -> None:
        if not self.copier.exists(url):
            logger.info("%s does not exist yet: nothing to copy to %s", url, path)
            return
        logger.info("copying %s to %s", url, path)
        self.copier.copy_dir(url, path)
        _restore_links(path)

    def publish(self, _checkpoint: Optional[str] = None) -> None:
        """Bring train_url up to output_path: new or changed entries, then the links, then remove
        what was pruned here. Called by the writing process after each checkpoint and at the end."""
        if not self.enabled or not self.settings.train_url:
            return
        root, url = self.settings.output_path, self.settings.train_url.rstrip("/")
        current = _signatures(root)
        # _entries leaves real *.link files out, so only symlinks carry the suffix here
        links = {name: target for name, target in current.items() if name.endswith(LINK)}
        for name, signature in current.items():
            if name in links or self._published.get(name) == signature:
                continue
            path = os.path.join(root, name)
            (self.copier.copy_dir if os.path.isdir(path) else self.copier.copy_file)(path, f"{url}/{name}")
            self._published[name] = signature
        for name, target in links.items():
            if self._published.get(name) != target:
                self._put_text(f"{url}/{name}", target)
                self._published[name] = target
        for name in [n for n in self._published if n not in links and not os.path.lexists(
                os.path.join(root, n.removesuffix(LINK)))]:
            self.copier.remove(f"{url}/{name}")
            del self._published[name]

    def _put_text(self, url: str, text: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, os.path.basename(url))
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            self.copier.copy_file(path, url)


@contextlib.contextmanager
def modelarts_session(settings, data: Sequence[str] = (), load: Sequence[str] = (),
                      output: Sequence[str] = (), output_files: Sequence[str] = ()) -> Iterator[ModelArtsJob]:
    """A one-process runner's ModelArts job (run_eval, export): copies in, paths into /cache,
    and output_path to train_url when the block succeeds."""
    job = ModelArtsJob(settings)
    job.start(settings, 1, data, load, output, output_files)
    yield job
    job.publish()


def _entries(root: str) -> List[str]:
    """What is mirrored: everything but temporary entries (.tmp-*, *.tmp) and .link files."""
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root)
                  if not n.startswith(".") and not n.endswith(".tmp") and not n.endswith(LINK))


def _signatures(root: str) -> Dict[str, object]:
    """Each mirrored entry's signature, a symlink's under NAME.link (as it is in the bucket)."""
    out = {}
    for name in _entries(root):
        path = os.path.join(root, name)
        if os.path.islink(path):
            out[name + LINK] = os.readlink(path)
        else:
            out[name] = _signature(path)
    return out


def _signature(path: str) -> Tuple:
    """Sizes and modification times: changes when anything inside changes."""
    if not os.path.isdir(path):
        stat = os.stat(path)
        return (stat.st_size, stat.st_mtime_ns)
    out = []
    for folder, _, names in os.walk(path):
        for name in names:
            stat = os.stat(os.path.join(folder, name))
            out.append((os.path.relpath(os.path.join(folder, name), path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(out))


def _restore_links(root: str) -> None:
    """Turn the NAME.link files of a downloaded folder back into symlinks."""
    for name in os.listdir(root):
        if not name.endswith(LINK):
            continue
        with open(os.path.join(root, name), encoding="utf-8") as f:
            target = f.read().strip()
        if os.path.basename(target) == target and os.path.isdir(os.path.join(root, target)):
            link = os.path.join(root, name.removesuffix(LINK))
            if os.path.lexists(link + ".tmp"):
                os.remove(link + ".tmp")
            os.symlink(target, link + ".tmp")
            os.replace(link + ".tmp", link)
        else:
            logger.warning("%s names %r, which is not a folder there: ignored", name, target)
        os.remove(os.path.join(root, name))


def _point_paths(target, keys: Sequence[str], folder: str) -> None:
    for key in keys:
        value = getattr(target, key)
        if value == "":
            setattr(target, key, folder)
        elif value and not os.path.isabs(value):
            setattr(target, key, os.path.join(folder, value))


def form_overrides(extra: List[str]) -> List[str]:
    """ModelArts passes the web form's parameters as --key=value (or --key value): key=value
    overrides for a config runner. The LUKE seed's modelArts is enable_modelarts."""
    out, i = [], 0
    while i < len(extra):
        item = extra[i]
        if not item.startswith("--") and "=" in item:  # a key=value after a --key=value
            out.append(item)
            i += 1
            continue
        if not item.startswith("--") or len(item) == 2:
            raise UserError(f"argument {item!r}: expected key=value or --key=value")
        key, sep, value = item[2:].partition("=")
        if not sep:
            if i + 1 >= len(extra) or extra[i + 1].startswith("--"):
                raise UserError(f"argument {item!r}: expected --{key}=value")
            value, i = extra[i + 1], i + 1
        out.append(f"{ALIASES.get(key, key)}={value}")
        i += 1
    return out


def parse_runner_args(parser: argparse.ArgumentParser, argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse a config runner's command line, ModelArts' --key=value form too; a relative --config
    not found here is read from the code folder (ModelArts starts in another directory)."""
    args, extra = parser.parse_known_args(argv)
    args.overrides = list(args.overrides) + form_overrides(extra)
    if not os.path.isfile(args.config) and os.path.isfile(os.path.join(ROOT, args.config)):
        args.config = os.path.join(ROOT, args.config)
    return args


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def add_modelarts_arguments(parser: argparse.ArgumentParser) -> None:
    """The ModelArts keys as options of an argparse runner (run_eval, export)."""
    group = parser.add_argument_group("ModelArts (see the README)")
    defaults = ModelArtsConfig()
    group.add_argument("--enable_modelarts", "--modelArts", type=_bool, nargs="?", const=True,
                       default=False, help="copy through moxing into /cache and back to train_url")
    for key in MODELARTS_KEYS[1:]:
        default = getattr(defaults, key)
        group.add_argument(f"--{key}", type=type(default), default=default, help=f"default {default!r}")
