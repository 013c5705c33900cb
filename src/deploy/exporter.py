"""Export a model directory to MINDIR, ONNX or AIR plus its JSON sidecar and tokenizer files.

The graph is built in the portable form (src/models/portable.py): plain MindSpore ops, and
for ONNX only ops its converter maps. A fine-tuned directory's task.json decides the head,
the labels and the default sequence length. Every file is written under a temporary name
in the target folder and renamed into place, the sidecar last: a sidecar present means a
complete export, and it records the graph's sha256 so a mismatched pair is refused.
"""
import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from src.deploy.signature import (DEFAULT_CHOICES, DEFAULT_SEQ_LENGTH, check_length, concrete, longest_sequence,
                                  model_inputs, model_outputs, position_limit)
from src.errors import UserError
from src.files import scratch_dir

FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
SIDECAR_VERSION = 1
ENTITY_LENGTHS = ("max_entity_length", "max_mention_length")  # LUKE's entity sizes (ExportRequest)


@dataclass
class ExportRequest:
    """What export.py was asked for; None sizes take their defaults from the model directory."""

    model_dir: str
    file_format: str
    file_name: str
    batch_size: int = 1
    seq_length: Optional[int] = None
    dynamic: bool = False
    head: Optional[str] = None
    max_entity_length: Optional[int] = None  # LUKE only: entities and tokens per mention
    max_mention_length: Optional[int] = None


@dataclass
class Resolved:
    """The model to export: its config (after task overrides), head, task record and overrides."""

    config: Any
    head: Optional[str]
    task: Optional[Dict[str, Any]]
    overrides: Dict[str, Any]


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_stem(file_name: str, file_format: str) -> str:
    """OUT from OUT or OUT.<ext>: MindSpore appends the extension itself."""
    extension = FORMATS[file_format]
    return file_name[:-len(extension)] if file_name.lower().endswith(extension) else file_name


def resolve_model(model_dir: str, head: Optional[str]) -> Resolved:
    """Head and config of a directory: task.json's when it has one, else --head or config.yaml's."""
    from src.models.config import load_model_config
    from src.tasks.finetune import TASK_FILE, read_task_spec
    from src.tasks.registry import task_class

    config = load_model_config(model_dir)
    if not os.path.isfile(os.path.join(model_dir, TASK_FILE)):
        return Resolved(config, head if head is not None else config.head, None, {})
    spec = read_task_spec(model_dir)
    task = task_class(spec["task"], model_dir)(spec)
    if head is not None and head != task.head:
        raise UserError(f"--head {head}: {model_dir} is fine-tuned for {spec['task']} "
                        f"(head {task.head}, from its task.json)")
    overrides = task.model_overrides()
    return Resolved(dataclasses.replace(config, **overrides), task.head, spec, overrides)


def check_request(request: ExportRequest) -> None:
    """Refuse what cannot be written here before anything is built."""
    import mindspore as ms

    if request.file_format not in FORMATS:
        raise UserError(f"--file_format {request.file_format}: expected one of {', '.join(FORMATS)}")
    target = ms.get_context("device_target")
    if request.file_format == "AIR" and target != "Ascend":
        raise UserError(f"--file_format AIR: MindSpore writes AIR only on Ascend (device target "
                        f"here: {target}); export MINDIR or ONNX instead")
    if request.file_format == "ONNX" and request.dynamic:
        raise UserError("--dynamic: MindSpore's ONNX converter writes fixed input shapes; "
                        "export MINDIR for free batch and sequence dimensions")
    if request.batch_size < 1:
        raise UserError(f"--batch_size {request.batch_size}: expected 1 or more")


def export_model(request: ExportRequest) -> List[str]:
    """Write the graph, its sidecar and the tokenizer files; returns the written paths."""
    check_request(request)
    resolved = resolve_model(request.model_dir, request.head)
    seq_length = request.seq_length or default_seq_length(resolved)
    check_length(resolved.config, seq_length, request.model_dir)
    stem = os.path.abspath(graph_stem(request.file_name, request.file_format))
    folder = os.path.dirname(stem)
    scratch = scratch_dir(stem)
    try:
        sizes = shape_sizes(resolved, request, seq_length)
        inputs = concrete(model_inputs(resolved.config, resolved.head), sizes)
        model = build_portable(request.model_dir, resolved, request.file_format)
        graph = write_graph(graph_cell(model, resolved.config), inputs, os.path.join(scratch, "graph"),
                            request.file_format)
        tokenizer_files = write_tokenizer(request.model_dir, os.path.join(scratch, "tokenizer"))
        record = sidecar(request, resolved, model, inputs, sizes, graph, tokenizer_files, stem)
        return publish(scratch, graph, stem + FORMATS[request.file_format], tokenizer_files,
                       record, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def default_seq_length(resolved: Resolved) -> int:
    """The fine-tuning features' length (task.json), else DEFAULT_SEQ_LENGTH capped by the
    position table."""
    recorded = (resolved.task or {}).get("options", {}).get("max_seq_length")
    return int(recorded) if recorded else min(DEFAULT_SEQ_LENGTH, position_limit(resolved.config))


def shape_sizes(resolved: Resolved, request: ExportRequest, seq_length: int) -> Dict[str, Optional[int]]:
    """Each symbolic dimension's size; batch, sequence, choices, entities and mention length are
    None with --dynamic."""
    config = resolved.config
    free = request.dynamic
    lengths = entity_lengths(resolved, request)
    return {"batch": None if free else request.batch_size, "seq": None if free else seq_length,
            "choices": None if free else DEFAULT_CHOICES, "labels": config.num_labels,
            "vocab": config.vocab_size, "hidden": config.hidden_size, "pair": 2,
            "entities": None if free else lengths.get("max_entity_length"),
            "mention": None if free else lengths.get("max_mention_length"),
            "entity_vocab": config.entity_vocab_size}


def default_entity_lengths(resolved: Resolved) -> Dict[str, int]:
    """LUKE's entities per row and tokens per mention: the fine-tuning features' (task.json),
    else config.yaml's; empty for the word-only families."""
    if resolved.config.model_type != "luke":
        return {}
    options = (resolved.task or {}).get("options", {})
    return {name: int(options.get(name) or getattr(resolved.config, name)) for name in ENTITY_LENGTHS}


def entity_lengths(resolved: Resolved, request: ExportRequest) -> Dict[str, int]:
    """The entity lengths of an export: the request's where given, else the defaults."""
    lengths = default_entity_lengths(resolved)
    for name in ENTITY_LENGTHS:
        value = getattr(request, name)
        if value is None:
            continue
        if not lengths:
            raise UserError(f"--{name}: {request.model_dir} is a {resolved.config.model_type} model; "
                            "only luke takes entity inputs")
        if value < 1:
            raise UserError(f"--{name} {value}: expected 1 or more")
        lengths[name] = value
    return lengths


def build_portable(model_dir: str, resolved: Resolved, file_format: str):
    """The model in its portable form (plain ops; ONNX-mapped ops only for ONNX), eval mode."""
    from src.models import load_pretrained, portable

    with portable.portable(onnx=file_format == "ONNX"):
        return load_pretrained(model_dir, head=resolved.head, **resolved.overrides)


def graph_cell(model, config):
    """What ms.export traces: LUKE's models under the seven named inputs, the others as built."""
    if config.model_type != "luke":
        return model
    from src.deploy.named_inputs import LukeInputs
    return LukeInputs(model)


def write_graph(model, inputs, stem: str, file_format: str) -> str:
    """ms.export of the model at the input specs (a None dim stays free); returns the file."""
    import mindspore as ms

    arguments = []
    for spec in inputs:
        if None in spec.dims:
            arguments.append(ms.Tensor(shape=list(spec.dims), dtype=getattr(ms, spec.dtype)))
        else:
            arguments.append(ms.Tensor(np.ones(spec.dims, dtype=spec.dtype)))
    try:
        ms.export(model, *arguments, file_name=stem, file_format=file_format)
    except (RuntimeError, ValueError, TypeError) as err:
        raise UserError(f"--file_format {file_format}: MindSpore could not export this model "
                        f"({str(err).splitlines()[0]})") from None
    return stem + FORMATS[file_format]


def write_tokenizer(model_dir: str, folder: str) -> Dict[str, str]:
    """The model directory's tokenizer files copied into folder; name -> sha256."""
    from src.data.tokenization import load_tokenizer

    written = load_tokenizer(model_dir).save(folder)
    return {path.name: file_sha256(str(path)) for path in written}


def sidecar(request: ExportRequest, resolved: Resolved, model, inputs, sizes, graph: str,
            tokenizer_files: Dict[str, str], stem: str) -> Dict[str, Any]:
    """The JSON beside the graph: everything predict.py and run_eval.py --exported need."""
    config = resolved.config
    return {
        "sidecar_version": SIDECAR_VERSION,
        "file_format": request.file_format,
        "graph": os.path.basename(stem) + FORMATS[request.file_format],
        "graph_sha256": file_sha256(graph),
        "family": config.model_type,
        "head": resolved.head,
        "labels": (resolved.task or {}).get("labels") or config.label_names,
        "task": resolved.task,
        "dynamic": request.dynamic,
        "inputs": [spec.to_dict() for spec in inputs],
        "outputs": [spec.to_dict() for spec in concrete(model_outputs(config, resolved.head), sizes)],
        "crf": crf_tables(model) if config.use_crf and resolved.head == "token_classification" else None,
        "pad_token_id": config.pad_token_id,
        "entity_pad_id": entity_pad_id(request.model_dir) if config.model_type == "luke" else None,
        **entity_lengths(resolved, request),
        "max_seq_length": longest_sequence(config),
        "tokenizer_files": tokenizer_files,
        "source": os.path.abspath(request.model_dir),
    }


def entity_pad_id(model_dir: str) -> int:
    """The [PAD] entity's id in the directory's entity vocabulary (releases number it differently)."""
    from src.data.entities.vocab import load_entity_vocab
    return load_entity_vocab(model_dir).pad_id


def crf_tables(model) -> Dict[str, list]:
    """The CRF's transition scores, as Viterbi decoding reads them."""
    crf = model.crf
    return {"transitions": crf.transitions.asnumpy().tolist(),
            "start_transitions": crf.start_transitions.asnumpy().tolist(),
            "end_transitions": crf.end_transitions.asnumpy().tolist()}


def publish(scratch: str, graph: str, graph_path: str, tokenizer_files: Dict[str, str],
            record: Dict[str, Any], folder: str) -> List[str]:
    """Rename the finished files into place: tokenizer files, the graph, the sidecar last.

    A tokenizer file of the same name already in the folder must be identical (another
    export's), else nothing is moved.
    """
    for name, digest in tokenizer_files.items():
        existing = os.path.join(folder, name)
        if os.path.exists(existing) and file_sha256(existing) != digest:
            raise UserError(f"{existing}: exists and is another tokenizer's file; export into "
                            "another folder")
    sidecar_path = os.path.splitext(graph_path)[0] + ".json"
    staged = os.path.join(scratch, "sidecar.json")
    with open(staged, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, ensure_ascii=False)
        f.write("\n")
    moves = [(os.path.join(scratch, "tokenizer", name), os.path.join(folder, name))
             for name in tokenizer_files]
    moves += [(graph, graph_path), (staged, sidecar_path)]
    for source, target in moves:
        os.replace(source, target)
    return [target for _, target in moves]
