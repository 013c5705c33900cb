"""Run an exported file: MINDIR through mindspore.load + nn.GraphCell, ONNX through onnxruntime.

`load_exported(path)` reads the sidecar export.py wrote beside the graph, checks that it is
this graph's (sha256, and for ONNX the input names) and returns an ExportedModel: numpy
batches in, numpy outputs out. Rows shorter than a static export's sequence length are
padded (pad id, mask 0), and for LUKE fewer entities or shorter mentions than it holds too
(the entity [PAD] id, mask 0, type 0, positions -1); the outputs are cut back. Larger inputs
are refused. A LUKE graph given only the word inputs (a word task) runs with padding entities.
"""
import json
import os
from typing import Any, Dict, List, Sequence

import numpy as np
from src.deploy.exporter import FORMATS, file_sha256
from src.deploy.signature import MENTION_INPUT, TEXT_INPUTS, TensorSpec
from src.errors import UserError

SUFFIXES = {extension: name for name, extension in FORMATS.items()}
# The axes a static export pads shorter inputs along, with the export option that sizes each.
PADDED_AXES = {"seq": "--seq_length", "entities": "--max_entity_length", "mention": "--max_mention_length"}


class CrfTables:
    """The transition scores an exported CRF head recorded in its sidecar."""

    def __init__(self, tables: Dict[str, list]):
        self.transitions = np.asarray(tables["transitions"], np.float32)
        self.start_transitions = np.asarray(tables["start_transitions"], np.float32)
        self.end_transitions = np.asarray(tables["end_transitions"], np.float32)

    def tables(self) -> tuple:
        return self.transitions, self.start_transitions, self.end_transitions


def read_sidecar(path: str) -> Dict[str, Any]:
    """The sidecar of a graph file, checked to name this graph and hold its sha256."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in SUFFIXES:
        raise UserError(f"{path}: not an exported graph; expected a .mindir or .onnx file "
                        "written by export.py")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    sidecar = os.path.splitext(path)[0] + ".json"
    try:
        with open(sidecar, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: no sidecar {os.path.basename(sidecar)} beside it; expected a "
                        "file written by export.py") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{sidecar}: cannot read it as JSON ({err})") from None
    if not isinstance(record, dict) or "graph_sha256" not in record or "inputs" not in record:
        raise UserError(f"{sidecar}: not an export sidecar (no graph_sha256 / inputs); "
                        "expected the JSON export.py writes")
    if record.get("file_format") != SUFFIXES[extension]:
        raise UserError(f"{sidecar}: describes a {record.get('file_format')} graph, not {path}")
    if file_sha256(path) != record["graph_sha256"]:
        raise UserError(f"{sidecar}: does not match {os.path.basename(path)} (sha256 differs); "
                        "export again or pair the graph with its own sidecar")
    return record


class ExportedModel:
    """An exported graph with its sidecar; `run` maps one batch of numpy inputs to outputs
    (src.tasks.finetune.Predictor runs many rows through it in batches)."""

    def __init__(self, path: str):
        self.path = path
        self.record = read_sidecar(path)
        self.folder = os.path.dirname(os.path.abspath(path))
        self.inputs = [TensorSpec.from_dict(spec) for spec in self.record["inputs"]]
        self.outputs = [TensorSpec.from_dict(spec) for spec in self.record["outputs"]]
        self.crf = CrfTables(self.record["crf"]) if self.record.get("crf") else None
        self._forward = (self._onnx_forward() if self.record["file_format"] == "ONNX"
                         else self._mindir_forward())

    @property
    def static_batch(self) -> int:
        """The batch the graph was exported at (0 where it is free)."""
        return self.inputs[0].dims[0] or 0

    def run(self, arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
        """One batch of inputs (in the sidecar's order) -> the graph's outputs as numpy. A LUKE
        graph given the word inputs alone (a word task's rows) runs them with no entities."""
        arrays = list(arrays)
        words_only = len(arrays) == len(TEXT_INPUTS) < len(self.inputs)
        if words_only:
            lead = np.shape(arrays[0])[:-1]
            arrays += [self._padding(spec, lead) for spec in self.inputs[len(arrays):]]
        if len(arrays) != len(self.inputs):
            raise UserError(f"{self.path}: takes {len(self.inputs)} inputs "
                            f"({', '.join(s.name for s in self.inputs)}), got {len(arrays)}")
        lengths = {}  # the sizes of the padded axes before padding, to cut the outputs back
        for array, spec in zip(arrays, self.inputs):
            for axis in PADDED_AXES:
                if axis in spec.axes:
                    lengths.setdefault(axis, np.shape(array)[spec.axes.index(axis)])
        if words_only:
            lengths["entities"] = 0
        padded = [self._fit(np.asarray(a, dtype=spec.dtype), spec) for a, spec in zip(arrays, self.inputs)]
        outputs = self._forward(padded)
        return [self._cut(out, spec, lengths) for out, spec in zip(outputs, self.outputs)]

    def _padding(self, spec: TensorSpec, lead: tuple) -> np.ndarray:
        """An entity input of padding only, at the graph's entity count (one where it is free)."""
        shape = tuple(lead) + tuple(size or 1 for size in spec.dims[len(lead):])
        return np.full(shape, self._pad_value(spec.name), spec.dtype)

    def _fit(self, array: np.ndarray, spec: TensorSpec) -> np.ndarray:
        """Check an input against a static shape and the position table; pad shorter sequence,
        entity and mention axes (PADDED_AXES) with the input's padding value."""
        longest = self.record.get("max_seq_length")
        if longest and "seq" in spec.axes and array.shape[spec.axes.index("seq")] > longest:
            raise UserError(f"{self.path}: input {spec.name} of shape {list(array.shape)}, but the "
                            f"model takes at most {longest} tokens")
        for axis, (size, want) in enumerate(zip(array.shape, spec.dims)):
            if want is None or size == want:
                continue
            name = spec.axes[axis]
            if name in PADDED_AXES and size < want:
                width = [(0, 0)] * array.ndim
                width[axis] = (0, want - size)
                array = np.pad(array, width, constant_values=self._pad_value(spec.name))
                continue
            option = PADDED_AXES.get(name)
            raise UserError(f"{self.path}: input {spec.name} of shape {list(array.shape)}, but the "
                            f"graph was exported for {list(spec.dims)} (export with --dynamic"
                            + (f" or a larger {option})" if option and size > want else ")"))
        return array

    def _pad_value(self, name: str) -> int:
        """What fills a padded position: the word or entity [PAD] id, -1 in mention positions, else 0."""
        if name == "input_ids":
            return self.record["pad_token_id"]
        if name == "entity_ids":
            return self.record["entity_pad_id"]
        return -1 if name == MENTION_INPUT else 0

    @staticmethod
    def _cut(output: np.ndarray, spec: TensorSpec, lengths: Dict[str, int]) -> np.ndarray:
        """An output's sequence and entity axes cut back to the inputs' sizes before padding."""
        for axis, length in lengths.items():
            if axis in spec.axes and output.shape[spec.axes.index(axis)] != length:
                output = np.take(output, range(length), axis=spec.axes.index(axis))
        return output

    def _mindir_forward(self):
        import mindspore as ms
        from mindspore import nn

        try:
            graph = nn.GraphCell(ms.load(self.path))
        except (RuntimeError, ValueError) as err:
            raise UserError(f"{self.path}: MindSpore cannot load it as MINDIR "
                            f"({str(err).splitlines()[0]})") from None

        def forward(arrays):
            out = graph(*(ms.Tensor(a) for a in arrays))
            return [o.asnumpy() for o in (out if isinstance(out, tuple) else (out,))]
        return forward

    def _onnx_forward(self):
        try:
            import onnxruntime
        except ImportError:
            raise UserError(f"{self.path}: running ONNX needs onnxruntime "
                            "(pip install -r requirements-deploy.txt)") from None
        options = onnxruntime.SessionOptions()
        threads = os.environ.get("OMP_NUM_THREADS")
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            session = onnxruntime.InferenceSession(self.path, options,
                                                   providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise UserError(f"{self.path}: onnxruntime cannot load it ({str(err).splitlines()[0]})") from None
        names = [i.name for i in session.get_inputs()]
        if names != [s.name for s in self.inputs] or len(session.get_outputs()) != len(self.outputs):
            raise UserError(f"{self.path}: graph inputs {names} and {len(session.get_outputs())} "
                            "outputs do not match its sidecar")

        def forward(arrays):
            return session.run(None, dict(zip(names, arrays)))
        return forward


def load_exported(path: str) -> ExportedModel:
    """The exported graph at path, checked against its sidecar."""
    return ExportedModel(path)
