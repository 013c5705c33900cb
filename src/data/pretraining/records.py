"""Pretraining datasets: corpus -> instances (in worker processes) -> MindRecord shards + manifest, and the
trainer's reader of them (global shuffle, rank sharding, dynamic masking).
"""
import json
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from src.data.corpus import Progress, list_files, read_documents
from src.data.mindrecord import MANIFEST, SCHEMA_VERSION, ShardedWriter, write_manifest
from src.data.ordered_pool import ordered_results
from src.data.pretraining.instances import ChunkResult, InstanceBuilder, PretrainOptions, load_builder
from src.data.pretraining.luke import ENTITY_COLUMNS, MASKED_ENTITY_COLUMNS, LukeRows
from src.data.pretraining.masking import DynamicMasker, masking_spec
from src.errors import UserError
from src.files import atomic_dir

log = logging.getLogger(__name__)
SCHEMA_DESC = f"bert-family pretraining instances, schema version {SCHEMA_VERSION}"
BASE_COLUMNS = ("input_ids", "input_mask", "segment_ids", "next_sentence_labels")
MASKED_COLUMNS = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
PRETRAINING_COLUMNS = BASE_COLUMNS + MASKED_COLUMNS
_COUNT_KEYS = ("documents", "sentences", "instances", "tokens", "instance_tokens", "masked_tokens")


def pretraining_schema(masking: str) -> dict[str, dict[str, Any]]:
    """MindRecord schema: the model zoo's columns; dynamic files keep word starts instead of masked-LM columns."""
    schema = {name: {"type": "int32", "shape": [-1]} for name in BASE_COLUMNS}
    if masking == "dynamic":
        return {**schema, "word_starts": {"type": "int32", "shape": [-1]}}
    return {**schema, "masked_lm_positions": {"type": "int32", "shape": [-1]},
            "masked_lm_ids": {"type": "int32", "shape": [-1]},
            "masked_lm_weights": {"type": "float32", "shape": [-1]}}


def create_pretraining_data(inputs: list[str], model_dir: str, output: str, options: PretrainOptions,
                            workers: int = 1, fmt: str = "auto", split: bool = False,
                            do_lower_case: bool | None = None, shard_size: int = 100_000,
                            overwrite: bool = False) -> dict[str, Any]:
    """Stream the corpus through the builder (in `workers` processes) into MindRecord shards and a manifest."""
    if workers < 1:
        raise UserError(f"--workers {workers}: expected a positive number of processes")
    files = list_files(inputs)
    builder = load_builder(model_dir, options, do_lower_case)
    skipped: Counter = Counter()
    progress = Progress(sum(path.stat().st_size for path in files))
    chunks = _chunks(read_documents(files, skipped, fmt, split, progress), options.chunk_documents)
    counts: Counter = Counter()
    started = time.monotonic()
    with atomic_dir(output, overwrite) as folder:
        writer = ShardedWriter(folder, pretraining_schema(options.masking), shard_size, description=SCHEMA_DESC)
        with tqdm(total=progress.total, unit="B", unit_scale=True, desc="pretraining data", disable=None) as bar:
            for result in _results(chunks, builder, model_dir, options, do_lower_case, workers):
                writer.write(result.columns)
                counts.update(result.counts)
                skipped.update(result.skipped)
                bar.update(progress.done - bar.n)
                bar.set_postfix(docs=counts["documents"],
                                docs_per_s=f"{counts['documents'] / (time.monotonic() - started):.0f}")
        shards = writer.close()
        if not counts["instances"]:
            raise UserError(f"{', '.join(inputs)}: no pretraining instances could be made "
                            f"(skipped: {dict(skipped) or 'nothing usable in the input'})")
        manifest = write_manifest(folder, _manifest(builder, model_dir, inputs, options, fmt, split, shard_size,
                                                    shards, counts, skipped))
    _log_summary(output, counts, skipped, time.monotonic() - started)
    return manifest


def _chunks(documents: Iterator[list[str]], size: int) -> Iterator[tuple[int, list[list[str]]]]:
    """Number documents into chunks of `size`; a last chunk of one document joins the one before (NSP needs two)."""
    held: tuple[int, list[list[str]]] | None = None
    current: list[list[str]] = []
    index = 0
    for document in documents:
        current.append(document)
        if len(current) == size:
            if held is not None:
                yield held
            held, current, index = (index, current), [], index + 1
    if held is not None and len(current) == 1:
        held[1].extend(current)
        current = []
    if held is not None:
        yield held
    if current:
        yield index, current


def _results(chunks: Iterator[tuple[int, list[list[str]]]], builder: InstanceBuilder, model_dir: str,
             options: PretrainOptions, do_lower_case: bool | None, workers: int) -> Iterator[ChunkResult]:
    """Chunk results in chunk order; with workers > 1, from a process pool with a bounded number in flight."""
    if workers == 1:
        for index, documents in chunks:
            yield builder.build(index, documents)
        return
    yield from ordered_results(chunks, _build_in_worker, workers, _init_worker,
                               (model_dir, options, do_lower_case))


_WORKER_BUILDER: InstanceBuilder | None = None


def _init_worker(model_dir: str, options: PretrainOptions, do_lower_case: bool | None) -> None:
    """Worker process start: Ctrl-C left to the parent (it stops the pool), one tokenizer thread, the builder."""
    global _WORKER_BUILDER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["RAYON_NUM_THREADS"] = "1"
    _WORKER_BUILDER = load_builder(model_dir, options, do_lower_case)


def _build_in_worker(index: int, documents: list[list[str]]) -> ChunkResult:
    """Build one chunk in a worker process."""
    return _WORKER_BUILDER.build(index, documents)


def _manifest(builder: InstanceBuilder, model_dir: str, inputs: list[str], options: PretrainOptions, fmt: str,
              split: bool, shard_size: int, shards: list[dict[str, Any]], counts: Counter,
              skipped: Counter) -> dict[str, Any]:
    """What the dataset holds and how it was made (independent of --workers, so outputs compare equal)."""
    tokenizer, spec = builder.tokenizer, builder.spec
    return {
        "shards": shards,
        "counts": {key: counts[key] for key in _COUNT_KEYS},
        "handled": {key: counts[key] for key in ("truncated_instances", "truncated_sentences") if counts[key]},
        "skipped": dict(sorted(skipped.items())),
        "options": {**asdict(options), "format": fmt, "split_sentences": split, "shard_size": shard_size},
        "inputs": [os.path.abspath(item) for item in inputs],
        "tokenizer": {"model_dir": os.path.abspath(model_dir), "kind": tokenizer.kind,
                      "vocab_size": tokenizer.vocab_size, "fingerprint": tokenizer.fingerprint()},
        "masking_spec": {"mask_id": spec.mask_id, "special_ids": spec.special_ids.tolist(),
                         "vocab_size": tokenizer.vocab_size},
    }


def _log_summary(output: str, counts: Counter, skipped: Counter, seconds: float) -> None:
    """One summary at the end: what was written, how fast, and what was skipped."""
    log.info("wrote %s: %d instances from %d documents (%d sentences, %d tokens, %d masked) in %.1f s, "
             "%.0f documents/s, %.0f tokens/s", output, counts["instances"], counts["documents"],
             counts["sentences"], counts["tokens"], counts["masked_tokens"], seconds,
             counts["documents"] / max(seconds, 1e-9), counts["tokens"] / max(seconds, 1e-9))
    if skipped:
        log.info("skipped: %s", ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items())))


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


def create_pretraining_dataset(data_dir: str, batch_size: int | None = None, shuffle: bool = True,
                               num_shards: int | None = None, shard_id: int | None = None, seed: int = 0,
                               drop_remainder: bool = True, num_parallel_workers: int | None = None) -> Any:
    """A `mindspore.dataset` pipeline over a pretraining folder yielding the model zoo's seven columns
    (LUKE files: then entity_ids, entity_position_ids, entity_segment_ids, entity_attention_mask,
    masked_entity_positions, masked_entity_ids, masked_entity_weights).

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
    columns = list(PRETRAINING_COLUMNS)
    if manifest["options"].get("objective") == "luke":
        rows = LukeRows(manifest, seed * 1_000_003 + (shard_id or 0))
        dataset = dataset.map(operations=rows, input_columns=rows.input_columns, output_columns=rows.output_columns,
                              num_parallel_workers=1)
        columns += [*ENTITY_COLUMNS, *MASKED_ENTITY_COLUMNS]
    elif manifest["options"]["masking"] == "dynamic":
        masker = DynamicMasker(masking_spec(manifest), seed * 1_000_003 + (shard_id or 0))
        dataset = dataset.map(operations=masker, input_columns=["input_ids", "word_starts"],
                              output_columns=["input_ids", *MASKED_COLUMNS], num_parallel_workers=1)
    dataset = dataset.project(columns)
    if batch_size:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset
