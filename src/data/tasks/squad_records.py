"""SQuAD / CMRC2018 JSON -> train or eval features (entity-linked for LUKE) -> MindRecord shards + manifest."""
import logging
import os
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

from src.data.entities.linking import EntityLinker, EntityOptions
from src.data.entities.mention_db import MentionDB
from src.data.entities.vocab import find_entity_vocab, load_entity_vocab
from src.data.tasks.features import check_split
from src.data.tasks.squad import SquadOptions, read_squad
from src.data.tasks.squad_entities import SquadEntities
from src.data.tasks.squad_features import build_squad_features, eval_columns
from src.data.tasks.task_records import write_task_dataset
from src.data.tokenization import load_tokenizer
from src.errors import UserError

log = logging.getLogger(__name__)
SKIP_REASONS = ("empty_context", "empty_question", "duplicate_id", "no_usable_answer", "answer_not_tokenized")


def create_squad_data(input_path: str, model_dir: str, output: str, options: SquadOptions, split: str,
                      overwrite: bool = False, do_lower_case: bool | None = None, mention_db: str | None = None,
                      model_redirects: str | None = None, entity_options: EntityOptions = EntityOptions(),
                      workers: int = 1) -> dict[str, Any]:
    """Read a SQuAD/CMRC file, build train or eval features and write them as MindRecord with a manifest.

    Eval files also carry per-feature `example_id` and `context` strings, so postprocessing needs
    nothing but the folder and the logits. With a LUKE model directory and `mention_db`, the features
    carry entity columns (squad_entities.py); the manifest's "entities" says how they were made.
    """
    check_split(split)
    if workers < 1:
        raise UserError(f"--workers {workers}: expected a positive number of processes")
    started = time.monotonic()
    tokenizer = load_tokenizer(model_dir, do_lower_case)
    entities = _entities(model_dir, mention_db, model_redirects, entity_options)
    examples, counts = read_squad(input_path)
    features = build_squad_features(examples, tokenizer, options, is_training=split == "train", progress=True,
                                    entities=entities, workers=workers)
    counts.update(features.counts)
    columns = features.columns() if split == "train" else eval_columns(features, examples)
    version_2 = any(example.is_impossible for example in examples)
    manifest = {
        "task": "squad", "split": split, "version_2_with_negative": version_2,
        "counts": {"examples": len(examples), "features": len(features),
                   "impossible_examples": sum(example.is_impossible for example in examples)},
        "skipped": {key: counts[key] for key in SKIP_REASONS if counts[key]},
        "handled": {key: value for key, value in sorted(counts.items()) if key not in SKIP_REASONS},
        "options": asdict(options), "input": os.path.abspath(input_path),
        "tokenizer": {"model_dir": os.path.abspath(model_dir), "kind": tokenizer.kind,
                      "fingerprint": tokenizer.fingerprint()},
    }
    if entities is not None:
        counts = features.entity_counts + entities.linker.article_counts([example.title for example in examples])
        manifest["entities"] = _entity_manifest(entities.linker, features.entity_ids.shape[1] if len(features) else 0,
                                                mention_db, model_redirects, counts)
    written = write_task_dataset(output, columns, manifest, overwrite=overwrite)
    log.info("wrote %s: %d %s features from %d examples in %.1f s; skipped: %s; handled: %s", output,
             len(features), split, len(examples), time.monotonic() - started, _listed(manifest["skipped"]),
             _listed(manifest["handled"]))
    return written


def _entities(model_dir: str, mention_db: str | None, model_redirects: str | None,
              options: EntityOptions) -> SquadEntities | None:
    """The entity linker for a LUKE model directory given a mention DB; None (said in one line) without one."""
    vocab_file = find_entity_vocab(model_dir)
    if mention_db is None:
        if vocab_file is not None:
            log.info("%s: a LUKE model directory and no --mention_db: the features carry no entities "
                     "(LUKE runs as RoBERTa)", model_dir)
        return None
    if vocab_file is None:
        raise UserError(f"{model_dir}: no entity vocabulary (entity_vocab.json/.tsv/.jsonl); --mention_db links "
                        "entities for a LUKE model directory")
    _check_entity_options(options)
    redirects = MentionDB(model_redirects) if model_redirects else None
    return SquadEntities(EntityLinker(MentionDB(mention_db), load_entity_vocab(str(vocab_file)), options, redirects))


def _check_entity_options(options: EntityOptions) -> None:
    """Reject linking options that keep nothing, naming the option."""
    for name in ("max_entity_length", "max_mention_length"):
        if getattr(options, name) < 1:
            raise UserError(f"--{name} {getattr(options, name)}: expected a positive whole number")
    if not 0.0 <= options.min_mention_link_prob <= 1.0:
        raise UserError(f"--min_mention_link_prob {options.min_mention_link_prob}: expected a value between 0 and 1")


def _entity_manifest(linker: EntityLinker, width: int, mention_db: str, model_redirects: str | None,
                     counts: Counter) -> dict:
    """How the entity columns were made and what linking found, kept and dropped (by reason)."""
    return {"mention_db": os.path.abspath(mention_db),
            "model_redirects": os.path.abspath(model_redirects) if model_redirects else None,
            "language": linker.language, "options": asdict(linker.options), "max_entities": width,
            "entity_vocab": {"file": str(linker.vocab.source.resolve()), "size": linker.vocab.size,
                             "pad_id": linker.vocab.pad_id, "fingerprint": linker.vocab.fingerprint()},
            "counts": dict(sorted(counts.items()))}


def _listed(counts: dict[str, int]) -> str:
    """'reason n, reason n' or 'nothing'."""
    return ", ".join(f"{reason} {count}" for reason, count in counts.items()) or "nothing"
