"""Pretraining MindRecord files: a sharded, atomic writer with a JSON manifest, and the trainer's reader.

MindRecord stores each file's name in its header and its index in `<name>.db`, so a shard cannot be
renamed after it is committed (MindSpore refuses to open it). A shard is therefore written under its
final name inside a hidden `.partial/` folder and moved into the output folder once committed; the
manifest is written last, so a folder without manifest.json is never a finished dataset.
"""
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from src.data.pretraining import MaskingSpec, mask_tokens
from src.errors import UserError

SCHEMA_VERSION = 1
SCHEMA_DESC = f"bert-family pretraining instances, schema version {SCHEMA_VERSION}"
MANIFEST = "manifest.json"
PARTIAL = ".partial"
BASE_COLUMNS = ("input_ids", "input_mask", "segment_ids", "next_sentence_labels")
MASKED_COLUMNS = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
PRETRAINING_COLUMNS = BASE_COLUMNS + MASKED_COLUMNS
_HEADER_BYTES = 1 << 20  # MindSpore's defaults (16 MB header, 32 MB pages) pad a small shard to ~50 MB
_PAGE_BYTES = 1 << 23
FAST_WRITE = True  # blobs built with numpy for MindRecord's C++ writer; False uses the public write_raw_data


def pretraining_schema(masking: str) -> dict[str, dict[str, Any]]:
    """MindRecord schema: the model zoo's columns; dynamic files keep word starts instead of masked-LM columns."""
    schema = {name: {"type": "int32", "shape": [-1]} for name in BASE_COLUMNS}
    if masking == "dynamic":
        return {**schema, "word_starts": {"type": "int32", "shape": [-1]}}
    return {**schema, "masked_lm_positions": {"type": "int32", "shape": [-1]},
            "masked_lm_ids": {"type": "int32", "shape": [-1]},
            "masked_lm_weights": {"type": "float32", "shape": [-1]}}


class ShardedWriter:
    """Writes rows into MindRecord shards of `shard_size` rows each; a shard appears only once committed."""

    def __init__(self, folder: str, schema: dict[str, dict[str, Any]], shard_size: int, prefix: str = "part",
                 description: str = SCHEMA_DESC) -> None:
        if shard_size < 1:
            raise UserError(f"--shard_size {shard_size}: expected a positive number of instances per file")
        self.folder = Path(folder)
        self.partial = self.folder / PARTIAL
        self.partial.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.description = description
        self.shard_size = shard_size
        self.prefix = prefix
        self.shards: list[dict[str, Any]] = []
        self._writer = None
        self._blob_fields: list[str] | None = None
        self._rows = 0

    def write(self, columns: dict[str, np.ndarray]) -> None:
        """Append rows given as column arrays (same first dimension), opening new shards as they fill."""
        count = len(next(iter(columns.values())))
        start = 0
        while start < count:
            if self._writer is None:
                self._open()
            stop = min(count, start + self.shard_size - self._rows)
            if self._blob_fields is not None:
                self._write_blobs({name: columns[name][start:stop] for name in self._blob_fields})
            else:
                self._writer.write_raw_data([{name: _plain(columns[name][row]) for name in self.schema}
                                             for row in range(start, stop)])
            self._rows += stop - start
            start = stop
            if self._rows == self.shard_size:
                self._commit()

    def close(self) -> list[dict[str, Any]]:
        """Commit the last shard, remove the partial folder; returns each shard's file name and row count."""
        if self._writer is not None:
            self._commit()
        self.partial.rmdir()
        return self.shards

    def _open(self) -> None:
        """Start the next shard in the partial folder."""
        name = f"{self.prefix}-{len(self.shards):05d}.mindrecord"
        self._writer = _file_writer_class()(str(self.partial / name), shard_num=1, overwrite=True)
        self._writer.set_header_size(_HEADER_BYTES)
        self._writer.set_page_size(_PAGE_BYTES)
        self._writer.add_schema(self.schema, self.description)
        self._rows = 0
        self._blob_fields = _blob_fields(self._writer, self.schema) if FAST_WRITE else None

    def _write_blobs(self, columns: dict[str, np.ndarray]) -> None:
        """Hand rows to MindRecord's C++ writer as ready-made blobs, in the byte layout its Python layer makes.

        `FileWriter.write_raw_data` spends ~0.3 ms per row in Python (it re-reads the schema from C++
        for every field of every row); building the blobs with numpy makes writing ~10x faster.
        """
        shard = self._writer._writer  # MindSpore's Python ShardWriter; its _writer is the C++ one
        if not shard.is_open:
            shard.open(self._writer._paths, True)
            shard.set_shard_header(self._writer._header)
        shard._writer.write_raw_data({}, _merged_blobs(columns, self.schema), True, False)

    def _commit(self) -> None:
        """Commit the open shard and move it (data and .db index) into the output folder."""
        self._writer.commit()
        name = f"{self.prefix}-{len(self.shards):05d}.mindrecord"
        for suffix in ("", ".db"):
            os.replace(self.partial / (name + suffix), self.folder / (name + suffix))
        self.shards.append({"file": name, "instances": self._rows})
        self._writer = None


def _plain(value: Any) -> Any:
    """A row's value as the public writer takes it: numpy strings and scalars become Python ones."""
    return value.item() if isinstance(value, np.generic) else value


def _file_writer_class() -> Any:
    """MindSpore's FileWriter, imported when the first shard opens: MindSpore takes over a second to
    import, and by then the builder's workers are already tokenizing (readers of this module that only
    need the manifest never pay for it)."""
    from mindspore.mindrecord import FileWriter

    return FileWriter


def _blob_fields(writer: Any, schema: dict[str, Any]) -> list[str] | None:
    """The blob field order of a FileWriter whose internals we know (MindSpore 2.x), else None (public path).

    The fast path needs every column stored as a blob (true for array columns) and the writer's
    private members it drives; if a MindSpore version lacks either, the public writer is used.
    """
    shard = getattr(writer, "_writer", None)
    header = getattr(writer, "_header", None)
    if not all(hasattr(obj, name) for obj, name in ((shard, "_writer"), (shard, "is_open"), (shard, "open"),
                                                     (shard, "set_shard_header"), (header, "blob_fields"))):
        return None
    fields = list(header.blob_fields)
    return fields if len(fields) > 1 and set(fields) == set(schema) else None


def _merged_blobs(columns: dict[str, np.ndarray], schema: dict[str, dict[str, Any]]) -> list[bytes]:
    """One blob per row: for each blob field in order, its byte length (8 bytes, big-endian) then its bytes."""
    parts = []
    for name, values in columns.items():
        data = np.ascontiguousarray(values, dtype=schema[name]["type"]).reshape(len(values), -1).view(np.uint8)
        length = np.frombuffer(data.shape[1].to_bytes(8, "big"), dtype=np.uint8)
        parts += [np.broadcast_to(length, (len(values), 8)), data]
    return [row.tobytes() for row in np.concatenate(parts, axis=1)]


def write_manifest(folder: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write manifest.json (with the schema version) through a temporary file: a finished dataset's last file."""
    manifest = {"schema_version": SCHEMA_VERSION, **manifest}
    path = Path(folder) / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return manifest


def read_manifest(folder: str) -> dict[str, Any]:
    """The manifest of a finished pretraining dataset; a missing, unreadable or newer one is a UserError."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder}: no {MANIFEST}; expected a folder written by `create_data.py pretrain` "
                        "(an interrupted run leaves none)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{path}: schema version {manifest.get('schema_version')!r}; this reader expects "
                        f"{SCHEMA_VERSION} (rebuild the data with this version's create_data.py)")
    return manifest


def read_schema_version(path: str) -> int:
    """The schema version stored in a shard's header (the schema description written with it)."""
    from mindspore.mindrecord import FileReader

    reader = FileReader(path, num_consumer=1)
    try:
        description = reader._reader.get_header().get_meta()[0].get_desc()  # no public accessor for the desc
    finally:
        reader.close()
    prefix = SCHEMA_DESC.rsplit(" ", 1)[0]
    if not description.startswith(prefix):
        raise UserError(f"{path}: not a pretraining MindRecord file (schema description {description!r})")
    return int(description.rsplit(" ", 1)[1])


class DynamicMasker:
    """The dataset map for dynamic masking: masks each row anew every time it is read (RoBERTa, ERNIE)."""

    def __init__(self, spec: MaskingSpec, seed: int) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(seed)

    def __call__(self, input_ids: np.ndarray, word_starts: np.ndarray) -> tuple[np.ndarray, ...]:
        """(input_ids, word_starts) -> (masked input_ids, masked_lm_positions, masked_lm_ids, masked_lm_weights)."""
        masked, positions, labels, weights = mask_tokens(input_ids, word_starts, self.spec, self.rng)
        return masked.astype(np.int32), positions, labels, weights


def masking_spec(manifest: dict[str, Any]) -> MaskingSpec:
    """Rebuild the masking spec the manifest recorded (no tokenizer needed at training time)."""
    recorded = manifest["masking_spec"]
    special = np.array(recorded["special_ids"], dtype=np.int32)
    replacement = np.setdiff1d(np.arange(recorded["vocab_size"], dtype=np.int32), special)
    return MaskingSpec(recorded["mask_id"], special, replacement, manifest["options"]["masked_lm_prob"],
                       manifest["options"]["max_predictions_per_seq"])


def create_pretraining_dataset(data_dir: str, batch_size: int | None = None, shuffle: bool = True,
                               num_shards: int | None = None, shard_id: int | None = None, seed: int = 0,
                               drop_remainder: bool = True, num_parallel_workers: int | None = None) -> Any:
    """A `mindspore.dataset` pipeline over a pretraining folder yielding the model zoo's seven columns.

    Rows are shuffled globally, split across ranks by (num_shards, shard_id), and, for dynamic
    files, masked anew each epoch by a map seeded from (seed, shard_id).
    """
    import mindspore.dataset as ds

    manifest = read_manifest(data_dir)
    files = [str(Path(data_dir) / shard["file"]) for shard in manifest["shards"]]
    if not files:
        raise UserError(f"{data_dir}: the manifest lists no shards (the corpus gave no instances)")
    missing = [name for name in files if not os.path.isfile(name)]
    if missing:
        raise UserError(f"{missing[0]}: shard listed in the manifest is missing")
    if (num_shards is None) != (shard_id is None):
        raise UserError("num_shards and shard_id go together: pass both (data parallel) or neither")
    dataset = ds.MindDataset(files, shuffle=shuffle, num_shards=num_shards, shard_id=shard_id,
                             num_parallel_workers=num_parallel_workers)
    if manifest["options"]["masking"] == "dynamic":
        masker = DynamicMasker(masking_spec(manifest), seed * 1_000_003 + (shard_id or 0))
        dataset = dataset.map(operations=masker, input_columns=["input_ids", "word_starts"],
                              output_columns=["input_ids", *MASKED_COLUMNS], num_parallel_workers=1)
    dataset = dataset.project(list(PRETRAINING_COLUMNS))
    if batch_size:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset
