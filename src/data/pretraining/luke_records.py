"""LUKE pretraining datasets: a DumpDB's pages -> LUKE rows (in worker processes) -> MindRecord shards + manifest.

Pages are taken in the DumpDB's title order, in fixed chunks each with its own random generator, so
the output does not depend on --workers. Row columns: input_ids, input_mask, segment_ids,
next_sentence_labels (0; LUKE has no NSP), entity_ids, entity_starts / entity_stops (each mention's
token [start, stop), the reader expands them to entity_position_ids), entity_attention_mask, and
either the masked columns (static) or word_starts (dynamic).
"""
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

from src.data.entities.dump_db import DumpDB
from src.data.entities.vocab import find_entity_vocab, load_entity_vocab
from src.data.mindrecord import ShardedWriter, write_manifest
from src.data.ordered_pool import ordered_results
from src.data.pretraining.instances import ChunkResult
from src.data.pretraining.luke import LukeInstanceBuilder, LukeOptions, options_record
from src.data.pretraining.records import SCHEMA_DESC
from src.data.tokenization import load_tokenizer
from src.errors import UserError
from src.files import atomic_dir

log = logging.getLogger(__name__)
_WORKER: dict[str, Any] = {}
_FLOAT_COLUMNS = ("masked_lm_weights", "masked_entity_weights")


def luke_schema(columns: dict) -> dict[str, dict[str, Any]]:
    """MindRecord schema of LUKE rows: every column flat per row, int32 but the weights."""
    return {name: {"type": "float32" if name in _FLOAT_COLUMNS else "int32", "shape": [-1]} for name in columns}


def create_luke_pretraining_data(dump_db: str, model_dir: str, output: str, options: LukeOptions, workers: int = 1,
                                 shard_size: int = 100_000, overwrite: bool = False) -> dict[str, Any]:
    """Stream the DumpDB's pages through the LUKE builder into MindRecord shards and a manifest."""
    options.check()
    if workers < 1:
        raise UserError(f"--workers {workers}: expected a positive number of processes")
    if find_entity_vocab(model_dir) is None:
        raise UserError(f"{model_dir}: no entity vocabulary (entity_vocab.json/.tsv/.jsonl); --objective luke "
                        "needs a LUKE model directory")
    db = DumpDB(dump_db)
    builder = _builder(model_dir, db, options)
    titles = list(db.titles())
    chunks = [(i, titles[start:start + options.chunk_pages])
              for i, start in enumerate(range(0, len(titles), options.chunk_pages))]
    counts, skipped, started, writer = Counter(), Counter(), time.monotonic(), None
    with atomic_dir(output, overwrite) as folder:
        with tqdm(total=len(titles), unit="page", desc="luke pretraining data", disable=None) as bar:
            for result in _results(chunks, builder, db, model_dir, options, workers):
                if result.columns:
                    writer = writer or ShardedWriter(folder, luke_schema(result.columns), shard_size,
                                                     description=SCHEMA_DESC)
                    writer.write(result.columns)
                counts.update(result.counts)
                skipped.update(result.skipped)
                bar.update(result.counts["pages"])
        if writer is None:
            raise UserError(f"{dump_db}: no LUKE instances could be made (skipped: {dict(skipped) or 'nothing'})")
        manifest = write_manifest(folder, _manifest(builder, db, model_dir, options, shard_size, writer.close(),
                                                    counts, skipped))
    log.info("wrote %s: %d instances, %d entities (%d masked) from %d pages in %.1f s; skipped: %s", output,
             counts["instances"], counts["entities"], counts["masked_entities"], counts["pages"],
             time.monotonic() - started, ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "nothing")
    return manifest


def _builder(model_dir: str, db: DumpDB, options: LukeOptions) -> LukeInstanceBuilder:
    """The builder over the model directory's tokenizer and entity vocabulary."""
    return LukeInstanceBuilder(load_tokenizer(model_dir), load_entity_vocab(model_dir), options, db.language)


def _build(builder: LukeInstanceBuilder, db: DumpDB, index: int, titles: list[str]) -> ChunkResult:
    """One chunk: its pages read, their links' redirects looked up, the rows built."""
    pages = list(db.pages(titles))
    resolve = db.resolve({link.title for _, paragraphs in pages for p in paragraphs for link in p.links})
    return builder.build(index, pages, resolve)


def _results(chunks: list[tuple[int, list[str]]], builder: LukeInstanceBuilder, db: DumpDB, model_dir: str,
             options: LukeOptions, workers: int) -> Iterator[ChunkResult]:
    """Chunk results in chunk order; with workers > 1 from a spawn pool, a bounded number in flight."""
    if workers == 1:
        yield from (_build(builder, db, index, titles) for index, titles in chunks)
        return
    yield from ordered_results(chunks, _build_in_worker, workers, _init_worker, (model_dir, db.path, options))


def _init_worker(model_dir: str, db_path: str, options: LukeOptions) -> None:
    """Worker process start: Ctrl-C left to the parent, one tokenizer thread, the DumpDB and builder."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["RAYON_NUM_THREADS"] = "1"
    db = DumpDB(db_path)
    _WORKER.update(db=db, builder=_builder(model_dir, db, options))


def _build_in_worker(index: int, titles: list[str]) -> ChunkResult:
    """Build one chunk in a worker process."""
    return _build(_WORKER["builder"], _WORKER["db"], index, titles)


def _manifest(builder: LukeInstanceBuilder, db: DumpDB, model_dir: str, options: LukeOptions, shard_size: int,
              shards: list[dict[str, Any]], counts: Counter, skipped: Counter) -> dict[str, Any]:
    """What the dataset holds and how it was made (independent of --workers)."""
    tokenizer, spec, vocab = builder.tokenizer, builder.spec, builder.vocab
    keys = ("pages", "instances", "tokens", "links", "entities", "masked_tokens", "masked_entities")
    return {
        "shards": shards,
        "counts": {key: counts[key] for key in keys},
        "handled": {key: counts[key] for key in ("mentions_cut_by_row_split", "mentions_cut_to_max_mention_length",
                                                 "entities_over_max_entity_length") if counts[key]},
        "skipped": dict(sorted(skipped.items())),
        "options": {**options_record(options), "shard_size": shard_size},
        "inputs": [os.path.abspath(db.path)], "dump_file": db.dump_file, "language": db.language,
        "tokenizer": {"model_dir": os.path.abspath(model_dir), "kind": tokenizer.kind,
                      "vocab_size": tokenizer.vocab_size, "fingerprint": tokenizer.fingerprint()},
        "masking_spec": {"mask_id": spec.mask_id, "special_ids": spec.special_ids.tolist(),
                         "vocab_size": tokenizer.vocab_size},
        "entity_vocab": {"file": str(vocab.source.resolve()), "size": vocab.size, "pad_id": vocab.pad_id,
                         "fingerprint": vocab.fingerprint()},
        "entity_masking_spec": {"mask_id": builder.entity_spec.mask_id,
                                "masked_entity_prob": builder.entity_spec.masked_entity_prob,
                                "max_predictions": builder.entity_spec.max_predictions},
    }
