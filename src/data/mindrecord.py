"""MindRecord files: a sharded, atomic writer and the JSON manifest that marks a finished dataset.

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

from src.errors import UserError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PARTIAL = ".partial"
_HEADER_BYTES = 1 << 20  # MindSpore's defaults (16 MB header, 32 MB pages) pad a small shard to ~50 MB
_PAGE_BYTES = 1 << 23
FAST_WRITE = True  # blobs built with numpy for MindRecord's C++ writer; False uses the public write_raw_data


class ShardedWriter:
    """Writes rows into MindRecord shards of `shard_size` rows each; a shard appears only once committed."""

    def __init__(self, folder: str, schema: dict[str, dict[str, Any]], shard_size: int, description: str,
                 prefix: str = "part") -> None:
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
