"""Predictions from raw inputs with an exported graph or a model directory (predict.py).

One reader and one postprocess per head: SQuAD-style question answering (answers with their
probability), sentence (pair) classification (label and probabilities), NER (a tag per token,
Viterbi with a CRF), fill-mask (top tokens at each mask) and LUKE's entity heads over text
with character entity spans (types, relation, a label per span). Features are built as training
built them (task.json's options) and rows run in batches through src.tasks.finetune.Predictor.
"""
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from src.data.json_files import json_lines, read_text
from src.deploy.signature import DEFAULT_SEQ_LENGTH
from src.errors import UserError

TOP_TOKENS = 5


@dataclass
class Deployed:
    """A model ready to predict: a Cell or an ExportedModel, with what postprocessing needs."""

    model: Any
    head: Optional[str]
    labels: Optional[List[str]]
    task: Optional[Dict[str, Any]]
    tokenizer: Any
    max_length: int
    entity_lengths: Dict[str, int]  # LUKE: max_entity_length, max_mention_length (else empty)

    @property
    def options(self) -> Dict[str, Any]:
        """The feature options the model was fine-tuned with, at this model's lengths."""
        return {**(self.task or {}).get("options", {}), "max_seq_length": self.max_length,
                **self.entity_lengths}


def open_model(path: str, head: Optional[str] = None) -> Deployed:
    """A .mindir / .onnx written by export.py, or a model directory."""
    from src.data.tokenization import load_tokenizer

    if os.path.isdir(path):
        from src.deploy.exporter import default_entity_lengths, default_seq_length, resolve_model
        from src.models import load_pretrained

        resolved = resolve_model(path, head)
        model = load_pretrained(path, head=resolved.head, **resolved.overrides)
        labels = (resolved.task or {}).get("labels") or resolved.config.label_names
        return Deployed(model, resolved.head, labels, resolved.task, load_tokenizer(path),
                        default_seq_length(resolved), default_entity_lengths(resolved))
    from src.deploy.exporter import ENTITY_LENGTHS
    from src.deploy.runtime import load_exported

    exported = load_exported(path)
    record = exported.record
    if head is not None and head != record["head"]:
        raise UserError(f"--head {head}: {path} was exported with head {record['head']}")
    recorded = (record.get("task") or {}).get("options", {}).get("max_seq_length")
    length = (exported.inputs[0].dims[-1] or recorded
              or min(DEFAULT_SEQ_LENGTH, record.get("max_seq_length") or DEFAULT_SEQ_LENGTH))
    return Deployed(exported, record["head"], record.get("labels"), record.get("task"),
                    load_tokenizer(exported.folder), int(length),
                    {name: record[name] for name in ENTITY_LENGTHS if name in record})


def run_rows(deployed: Deployed, columns: Dict[str, np.ndarray], batch_size: int) -> List[np.ndarray]:
    """The model's outputs for feature columns (input_ids, input_mask, segment_ids, and LUKE's
    entity columns where present), in batches."""
    from src.tasks.entity_task import INPUTS
    from src.tasks.finetune import Predictor

    names = INPUTS if "entity_ids" in columns else INPUTS[:3]
    return Predictor(deployed.model, batch_size)(tuple(columns[name] for name in names))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def records(path: str) -> tuple[List[Any], bool]:
    """JSON lines (one object per line, True), else the file's non-blank lines (False)."""
    text = read_text(path)
    if text.lstrip().startswith("{"):
        return [value for _, value in json_lines(text, path)], True
    return [line for line in text.splitlines() if line.strip()], False


def field(record: Any, key: str, kind: type, path: str, index: int) -> Any:
    """record[key], checked to be a `kind`; otherwise one line naming the file and record."""
    if not isinstance(record, dict) or not isinstance(record.get(key), kind):
        raise UserError(f"{path}: record {index + 1}: expected a {kind.__name__} under {key!r}")
    return record[key]


# ---------------------------------------------------------------- question answering

def squad_file(path: str) -> Optional[dict]:
    """The parsed file if it is one SQuAD-style JSON object (with "data"), else None."""
    try:
        whole = json.loads(read_text(path))
    except ValueError:
        return None
    return whole if isinstance(whole, dict) and "data" in whole else None


def predict_answers(deployed: Deployed, path: str, batch_size: int) -> List[Dict[str, Any]]:
    """SQuAD JSON, or JSON lines of question / context (/ id): the best answer and its probability."""
    from src.data.tasks.squad import SquadExample, SquadOptions, read_squad
    from src.data.tasks.squad_features import build_squad_features, eval_columns
    from src.data.tasks.squad_postprocess import postprocess_squad
    from src.tasks.finetune import recorded_options

    whole = squad_file(path)
    if whole is not None:
        examples, _ = read_squad(path, whole)
    else:
        rows, _ = records(path)
        examples = [SquadExample(str(row.get("id", index)) if isinstance(row, dict) else str(index), "",
                                 field(row, "question", str, path, index),
                                 field(row, "context", str, path, index), (), False)
                    for index, row in enumerate(rows)]
    # without task.json, windows sized for the model's length as the zoo's 384 / 128 / 64 are
    length = deployed.max_length
    options = recorded_options(SquadOptions, {"doc_stride": length // 3, "max_query_length": length // 6,
                                              **deployed.options})
    features = build_squad_features(examples, deployed.tokenizer, options, is_training=False, progress=True)
    columns = eval_columns(features, examples)
    start, end = run_rows(deployed, columns, batch_size)
    task = deployed.task or {}
    _, nbest, _ = postprocess_squad(columns, start, end, task.get("n_best_size", 20),
                                    task.get("max_answer_length", 30),
                                    bool(task.get("version_2_with_negative")),
                                    task.get("null_score_diff_threshold", 0.0))
    return [{"id": example.id, "question": example.question, "answer": nbest[example.id][0]["text"],
             "probability": nbest[example.id][0]["probability"]} for example in examples]


# ---------------------------------------------------------------- classification

def predict_labels(deployed: Deployed, path: str, batch_size: int) -> List[Dict[str, Any]]:
    """JSON lines of text (/ text_pair), or lines (a tab between a pair): label and probabilities."""
    from src.data.tasks.features import encode_texts, special_layout

    rows, is_json = records(path)
    if not is_json:
        rows = [dict(zip(("text", "text_pair"), line.split("\t", 1))) for line in rows]
    texts = [field(row, "text", str, path, index) for index, row in enumerate(rows)]
    pairs = [row.get("text_pair") for row in rows]
    has_pairs = any(pair is not None for pair in pairs)
    columns, _ = encode_texts(deployed.tokenizer, special_layout(deployed.tokenizer), texts,
                              [pair or "" for pair in pairs] if has_pairs else None, deployed.max_length)
    (logits,) = run_rows(deployed, columns, batch_size)
    if logits.shape[-1] == 1:
        return [{"text": text, "score": float(value)} for text, value in zip(texts, logits.reshape(-1))]
    names = deployed.labels or [str(index) for index in range(logits.shape[-1])]
    results = []
    for text, probabilities in zip(texts, softmax(logits)):
        results.append({"text": text, "label": names[int(probabilities.argmax())],
                        "probabilities": {name: float(p) for name, p in zip(names, probabilities)}})
    return results


# ---------------------------------------------------------------- NER

def predict_tags(deployed: Deployed, path: str, batch_size: int) -> List[Dict[str, Any]]:
    """JSON lines of tokens, or whitespace-split lines: a tag per token (O past the length)."""
    from src.data.tasks.ner import NerExample, NerOptions, build_ner_features
    from src.tasks.finetune import recorded_options
    from src.tasks.token_classification import word_paths

    rows, is_json = records(path)
    examples = [NerExample(field(row, "tokens", list, path, index) if is_json else row.split(), None,
                           f"{path}: record {index + 1}") for index, row in enumerate(rows)]
    labels = deployed.labels or []
    options = recorded_options(NerOptions, deployed.options)
    columns = build_ner_features(examples, deployed.tokenizer, options,
                                 {label: index for index, label in enumerate(labels)}).columns
    (logits,) = run_rows(deployed, columns, batch_size)
    paths = word_paths(logits, columns["label_ids"], getattr(deployed.model, "crf", None))
    results = [{"tokens": example.words, "tags": ["O"] * len(example.words)} for example in examples]
    for path_ids, index in zip(paths, columns["example_index"]):
        tags = [labels[i] if i < len(labels) else str(i) for i in path_ids]
        results[index]["tags"] = tags + ["O"] * (len(examples[index].words) - len(tags))
    return results


# ---------------------------------------------------------------- fill-mask

def predict_masked(deployed: Deployed, path: str, batch_size: int) -> List[Dict[str, Any]]:
    """JSON lines of text, or lines, holding the tokenizer's mask token: top tokens at each mask."""
    from src.data.tasks.features import encode_texts, special_layout

    tokenizer = deployed.tokenizer
    rows, is_json = records(path)
    texts = [field(row, "text", str, path, index) for index, row in enumerate(rows)] if is_json else rows
    columns, _ = encode_texts(tokenizer, special_layout(tokenizer), texts, None, deployed.max_length)
    logits = run_rows(deployed, columns, batch_size)[0]
    results = []
    for row, text in enumerate(texts):
        masked = np.flatnonzero(columns["input_ids"][row] == tokenizer.mask_token_id)
        if not len(masked):
            raise UserError(f"{path}: record {row + 1} holds no {tokenizer.mask_token} within "
                            f"{deployed.max_length} tokens")
        found = []
        for position in masked:
            probabilities = softmax(logits[row, position])
            best = np.argsort(-probabilities, kind="stable")[:TOP_TOKENS]
            tokens = tokenizer.convert_ids_to_tokens([int(i) for i in best])
            found.append([{"token": token, "probability": float(probabilities[i])}
                          for token, i in zip(tokens, best)])
        results.append({"text": text, "masks": found})
    return results


# ---------------------------------------------------------------- LUKE entity heads

def entity_records(deployed: Deployed, path: str, task: str, batch_size: int) -> tuple:
    """JSON lines of {"text", "entity_spans": [[start, end], ...]} (character spans), encoded in
    the task's mode as fine-tuning encoded them -> (texts, spans, logits)."""
    from src.data.tasks.entity_features import EntityTaskOptions, entity_columns
    from src.data.tokenization import LukeTokenizer
    from src.tasks.finetune import recorded_options

    if not isinstance(deployed.tokenizer, LukeTokenizer):
        raise UserError(f"head {deployed.head}: needs a LUKE tokenizer (an entity vocabulary beside the model)")
    rows, is_json = records(path)
    if not is_json:
        raise UserError(f'{path}: expected JSON lines of {{"text", "entity_spans": [[start, end], ...]}}')
    options = recorded_options(EntityTaskOptions, deployed.options)
    texts, spans, encodings = [], [], []
    for index, row in enumerate(rows):
        text = field(row, "text", str, path, index)
        found = field(row, "entity_spans", list, path, index)
        if not all(isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)
                   for span in found):
            raise UserError(f"{path}: record {index + 1}: expected entity_spans as [[start, end], ...] "
                            "character offsets")
        try:
            encoding = options.encode(deployed.tokenizer, text, [tuple(span) for span in found], task)
        except UserError as err:
            raise UserError(f"{path}: record {index + 1}: {err}") from None
        if encoding.entities.cut_by_truncation or encoding.entities.over_max_entity_length:
            raise UserError(f"{path}: record {index + 1}: entity spans beyond {options.max_seq_length} "
                            f"tokens or {options.max_entity_length} entities; shorten the text or "
                            "give fewer spans")
        texts.append(text)
        spans.append(found)
        encodings.append(encoding)
    (logits,) = run_rows(deployed, entity_columns(encodings, options), batch_size)
    return texts, spans, logits


def label_probabilities(deployed: Deployed, probabilities: np.ndarray) -> Dict[str, float]:
    """Each label's name (its index where the model has no names) -> its probability."""
    names = deployed.labels or [str(index) for index in range(len(probabilities))]
    return {name: float(p) for name, p in zip(names, probabilities)}


def predict_entity_types(deployed: Deployed, path: str, batch_size: int) -> List[Dict[str, Any]]:
    """Entity typing of one span: the types scored above 0.5 (logit > 0), every type's probability."""
    texts, spans, logits = entity_records(deployed, path, "entity_classification", batch_size)
    results = []
    for text, found, row in zip(texts, spans, logits):
        probabilities = label_probabilities(deployed, 1.0 / (1.0 + np.exp(-row)))
        types = [name for name, logit in zip(list(probabilities), row) if logit > 0]
        results.append({"text": text, "entity_spans": found, "types": types, "probabilities": probabilities})
    return results


def predict_relations(deployed: Deployed, path: str, batch_size: int) -> List[Dict[str, Any]]:
    """The relation of two spans (head, tail): the label and every label's probability."""
    texts, spans, logits = entity_records(deployed, path, "entity_pair_classification", batch_size)
    results = []
    for text, found, probabilities in zip(texts, spans, softmax(logits)):
        scored = label_probabilities(deployed, probabilities)
        results.append({"text": text, "entity_spans": found, "label": list(scored)[int(probabilities.argmax())],
                        "probabilities": scored})
    return results


def predict_span_labels(deployed: Deployed, path: str, batch_size: int) -> List[Dict[str, Any]]:
    """A label per candidate span (span NER) and its probabilities; no decoding across spans."""
    texts, spans, logits = entity_records(deployed, path, "entity_span_classification", batch_size)
    results = []
    for text, found, rows in zip(texts, spans, softmax(logits)):
        labelled = []
        for span, probabilities in zip(found, rows):
            scored = label_probabilities(deployed, probabilities)
            labelled.append({"span": span, "label": list(scored)[int(probabilities.argmax())],
                             "probabilities": scored})
        results.append({"text": text, "spans": labelled})
    return results


PREDICTORS: Dict[str, Callable[[Deployed, str, int], List[Dict[str, Any]]]] = {
    "question_answering": predict_answers,
    "sequence_classification": predict_labels,
    "token_classification": predict_tags,
    "masked_lm": predict_masked,
    "pretraining": predict_masked,
    "entity_classification": predict_entity_types,
    "entity_pair_classification": predict_relations,
    "entity_span_classification": predict_span_labels,
}


def predict_file(deployed: Deployed, path: str, batch_size: int) -> List[Dict[str, Any]]:
    """The predictions of every input record, in input order."""
    if deployed.head not in PREDICTORS:
        raise UserError(f"head {deployed.head}: predict.py predicts with {', '.join(PREDICTORS)}")
    return PREDICTORS[deployed.head](deployed, path, batch_size)
