"""SQuAD / CMRC2018 JSON -> train or eval features -> MindRecord shards with a manifest."""
import logging
import os
import time
from dataclasses import asdict
from typing import Any

from src.data.tasks.features import check_split
from src.data.tasks.squad import SquadOptions, read_squad
from src.data.tasks.squad_features import build_squad_features, eval_columns
from src.data.tasks.task_records import write_task_dataset
from src.data.tokenization import load_tokenizer

log = logging.getLogger(__name__)
SKIP_REASONS = ("empty_context", "empty_question", "duplicate_id", "no_usable_answer", "answer_not_tokenized")


def create_squad_data(input_path: str, model_dir: str, output: str, options: SquadOptions, split: str,
                      overwrite: bool = False, do_lower_case: bool | None = None) -> dict[str, Any]:
    """Read a SQuAD/CMRC file, build train or eval features and write them as MindRecord with a manifest.

    Eval files also carry per-feature `example_id` and `context` strings, so postprocessing needs
    nothing but the folder and the logits.
    """
    check_split(split)
    started = time.monotonic()
    tokenizer = load_tokenizer(model_dir, do_lower_case)
    examples, counts = read_squad(input_path)
    features = build_squad_features(examples, tokenizer, options, is_training=split == "train", progress=True)
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
    written = write_task_dataset(output, columns, manifest, overwrite=overwrite)
    log.info("wrote %s: %d %s features from %d examples in %.1f s; skipped: %s; handled: %s", output,
             len(features), split, len(examples), time.monotonic() - started, _listed(manifest["skipped"]),
             _listed(manifest["handled"]))
    return written


def _listed(counts: dict[str, int]) -> str:
    """'reason n, reason n' or 'nothing'."""
    return ", ".join(f"{reason} {count}" for reason, count in counts.items()) or "nothing"
