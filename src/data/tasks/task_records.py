"""Fine-tuning task features in MindRecord: an atomic sharded writer, and readers for training and evaluation.

Every numeric column is stored flattened per row ([-1]) and its per-row shape is recorded in the
manifest, so (N, 4, L) multiple-choice inputs or (N, L, 2) offsets come back as they went in.
"""
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from src.data.mindrecord import MANIFEST, ShardedWriter, write_manifest
from src.errors import UserError
from src.files import atomic_dir

TASK_SCHEMA_VERSION = 1
TASK_SCHEMA_DESC = f"bert-family task features, schema version {TASK_SCHEMA_VERSION}"
_NUMERIC = {"int32": "int32", "int64": "int64", "float32": "float32", "float64": "float64"}


def _column_type(name: str, values: np.ndarray) -> str:
    """MindRecord type of a column: its numeric dtype, or string for numpy text arrays."""
    if values.dtype.kind == "U":
        if values.ndim != 1:
            raise ValueError(f"string column {name} must be one-dimensional")
        return "string"
    if values.dtype.name not in _NUMERIC:
        raise ValueError(f"column {name}: dtype {values.dtype} is not one of {sorted(_NUMERIC)} or text")
    return values.dtype.name


def write_task_dataset(output: str, columns: dict[str, np.ndarray], manifest: dict[str, Any],
                       overwrite: bool = False, shard_size: int = 100_000,
                       files: dict[str, str] | None = None) -> dict[str, Any]:
    """Write columns (first dimension = rows) as MindRecord shards plus manifest.json, all or nothing;
    `files` (name -> text, such as label2id.json) go beside them."""
    rows = {len(values) for values in columns.values()}
    if len(rows) != 1:
        raise ValueError(f"columns have different row counts: { {k: len(v) for k, v in columns.items()} }")
    count = rows.pop()
    if not count:
        raise UserError(f"{output}: no features to write (skipped: {manifest.get('skipped') or 'nothing'})")
    types = {name: _column_type(name, values) for name, values in columns.items()}
    schema = {name: ({"type": kind} if kind == "string" else {"type": kind, "shape": [-1]})
              for name, kind in types.items()}
    flat = {name: values if types[name] == "string" else values.reshape(count, -1)
            for name, values in columns.items()}
    shapes = {name: list(values.shape[1:]) for name, values in columns.items()}
    with atomic_dir(output, overwrite) as folder:
        writer = ShardedWriter(folder, schema, shard_size, description=TASK_SCHEMA_DESC)
        writer.write(flat)
        shards = writer.close()
        for name, text in (files or {}).items():
            Path(folder, name).write_text(text, encoding="utf-8")
        written = write_manifest(folder, {**manifest, "task_schema_version": TASK_SCHEMA_VERSION,
                                          "rows": count, "columns": {name: {"type": types[name],
                                                                            "shape": shapes[name]}
                                                                     for name in columns},
                                          "shards": shards})
    return written


def read_task_manifest(folder: str, task: str | None = None) -> dict[str, Any]:
    """The manifest of a finished task folder; a missing one, a pretraining folder or another task's is a UserError."""
    from src.data.json_files import load_json

    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder}: no {MANIFEST}; expected a folder written by `create_data.py <task>` "
                        "(an interrupted run leaves none)")
    manifest = load_json(path)
    if manifest.get("task_schema_version") != TASK_SCHEMA_VERSION:
        raise UserError(f"{path}: not task features of schema version {TASK_SCHEMA_VERSION} "
                        "(rebuild the data with this version's create_data.py)")
    if task and manifest.get("task") != task:
        raise UserError(f"{folder}: holds {manifest.get('task')!r} features; expected {task!r}")
    return manifest


def _files(folder: str, manifest: dict[str, Any]) -> list[str]:
    files = [os.path.join(folder, shard["file"]) for shard in manifest["shards"]]
    missing = [name for name in files if not os.path.isfile(name)]
    if missing:
        raise UserError(f"{missing[0]}: shard listed in the manifest is missing")
    return files


def _restore(manifest: dict[str, Any], batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Give each numeric column back its recorded per-row shape."""
    out = {}
    for name, values in batch.items():
        info = manifest["columns"][name]
        out[name] = values if info["type"] == "string" else values.reshape((len(values), *info["shape"]))
    return out


def task_batches(folder: str, batch_size: int, columns: list[str], shuffle: bool = False, seed: int = 0,
                 num_shards: int | None = None, shard_id: int | None = None, skip: int = 0,
                 drop_remainder: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Batches of the named columns as numpy arrays, shuffled by seed and split across ranks."""
    import mindspore.dataset as ds

    manifest = read_task_manifest(folder)
    unknown = [name for name in columns if name not in manifest["columns"]]
    if unknown:
        raise UserError(f"{folder}: no column {unknown[0]!r} (has {', '.join(manifest['columns'])}); "
                        "was it built for another split or task?")
    if shuffle:
        ds.config.set_seed(seed)
    dataset = ds.MindDataset(_files(folder, manifest), columns_list=columns, shuffle=shuffle,
                             num_shards=num_shards, shard_id=shard_id)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if skip:
        dataset = dataset.skip(skip)
    for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
        yield _restore(manifest, batch)


def task_batch_count(folder: str, batch_size: int, world: int = 1, drop_remainder: bool = True) -> int:
    """Batches per epoch of one rank."""
    rows = read_task_manifest(folder)["rows"]
    per_rank = -(-rows // world)
    return per_rank // batch_size if drop_remainder else -(-per_rank // batch_size)


def load_task_columns(folder: str, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every row of the named columns (default all), in file order."""
    manifest = read_task_manifest(folder)
    names = columns or list(manifest["columns"])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for batch in task_batches(folder, 1024, names):
        for name in names:
            parts[name].append(batch[name])
    return {name: np.concatenate(values) for name, values in parts.items()}
