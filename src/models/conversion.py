"""Checkpoint conversion: HF directory <-> project model directory, zoo .ckpt -> project, and
the original LUKE release (pytorch_model.bin + metadata.json + entity vocabulary) -> project."""
import json
import os
import shutil
import struct
from typing import Dict, List, Optional, Tuple

import numpy as np

from src.data.entities.vocab import ENTITY_VOCAB_FILES
from src.data.tokenization import TOKENIZER_FILES
from src.errors import UserError
from src.data.json_files import load_json
from src.files import atomic_dir
from src.models import build_model
from src.models.config import ModelConfig, load_model_config
from src.models.hf_names import HF_PREFIX, all_pairs, config_from_hf, config_to_hf, head_of_architecture
from src.models.relative import FunctionalRelativePositions
from src.models.weights import FORMATS, cell_arrays, find_weights, load_into, read_weights, write_weights
from src.models.zoo_names import zoo_luke_to_hf, zoo_to_project

SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
                      "I64": np.int64, "I32": np.int32, "I8": np.int8, "U8": np.uint8,
                      "BOOL": np.bool_}
# Heads whose HF class builds no pooler (add_pooling_layer=False); LukeForMaskedLM keeps one.
NO_POOLER = {"masked_lm", "token_classification", "question_answering"}
LUKE_NO_POOLER = {"token_classification", "question_answering"}
# First name parts of backbone weights, which a bare HF model saves without its prefix.
BACKBONE_PARTS = ("embeddings.", "entity_embeddings.", "encoder.", "pooler.")
ENTITY_QUERIES = ("w2e_query", "e2w_query", "e2e_query")
# HF buffers and tied copies that carry no weights of their own.
TIED_OR_BUFFER = ("embeddings.position_ids", "embeddings.token_type_ids", "decoder.weight",
                  "decoder.bias", "relative_positions_encoding.positions_encoding")


def read_json(path: str) -> Dict:
    """A JSON object from a file; bad JSON names the file, line and column."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    """Read a .safetensors file into numpy, widening bfloat16 (which numpy lacks) to float32."""
    try:
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
            data = f.read()
    except (OSError, struct.error, ValueError) as err:
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[start:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif info["dtype"] in SAFETENSORS_DTYPES:
            array = np.frombuffer(raw, dtype=SAFETENSORS_DTYPES[info["dtype"]])
        else:
            raise UserError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        out[name] = array.reshape(info["shape"]).copy()
    return out


def read_hf_weights(hf_dir: str, allow_pickle: bool) -> Dict[str, np.ndarray]:
    """Weights of an HF directory: model.safetensors, its sharded index, or a torch .bin."""
    single = os.path.join(hf_dir, "model.safetensors")
    if os.path.isfile(single):
        return read_safetensors(single)
    index = os.path.join(hf_dir, "model.safetensors.index.json")
    if os.path.isfile(index):
        shards = sorted(set(read_json(index).get("weight_map", {}).values()))
        out = {}
        for shard in shards:
            out.update(read_safetensors(os.path.join(hf_dir, shard)))
        return out
    pickled = os.path.join(hf_dir, "pytorch_model.bin")
    if os.path.isfile(pickled):
        return _read_torch_bin(pickled, allow_pickle)
    raise UserError(f"{hf_dir}: no weights (expected model.safetensors, "
                    "model.safetensors.index.json or pytorch_model.bin)")


def _read_torch_bin(path: str, allow_pickle: bool) -> Dict[str, np.ndarray]:
    if not allow_pickle:
        raise UserError(f"{path} is a pickle; pass --allow_pickle to read it with "
                        "torch.load(weights_only=True), or give a safetensors checkpoint")
    try:
        import torch
    except ImportError:
        raise UserError(f"{path}: reading pytorch_model.bin needs torch installed") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}


def _hf_head(hf_config: Dict, names: List[str], source: str) -> Optional[str]:
    archs = hf_config.get("architectures") or []
    if archs:
        model_type, head = head_of_architecture(archs[0])
        if model_type != hf_config.get("model_type"):
            raise UserError(f"{source}: architecture {archs[0]} does not match model_type "
                            f"{hf_config.get('model_type')!r}")
        return head
    if any("seq_relationship" in n or "sop_classifier" in n for n in names):
        return "pretraining"
    if any(n.startswith(("cls.predictions", "predictions.", "lm_head.")) for n in names):
        return "masked_lm"
    return None


def _check_buffers(arrays: Dict[str, np.ndarray], config: ModelConfig, source: str) -> None:
    """NEZHA checkpoints in 4.x naming keep the relative table; it must be ours."""
    tables = [n for n in arrays if n.endswith("relative_positions_encoding.positions_encoding")]
    if not tables:
        return
    length = arrays[tables[0]].shape[0]
    ours = FunctionalRelativePositions(config.head_dim, config.max_relative_position)(length)
    for name in tables:
        if not np.allclose(arrays[name], ours.asnumpy(), atol=1e-5):
            raise UserError(f"{source}: {name} is not NEZHA's functional relative encoding "
                            f"for max_relative_position={config.max_relative_position}")


def hf_to_project(hf_dir: str, allow_pickle: bool = False
                  ) -> Tuple[ModelConfig, Optional[str], Dict[str, np.ndarray], List[str]]:
    """(config, head, project-named arrays, notes) from an HF model directory."""
    config_path = os.path.join(hf_dir, "config.json")
    hf_config = read_json(config_path)
    config = config_from_hf(hf_config, config_path)
    arrays = _with_prefix(read_hf_weights(hf_dir, allow_pickle), config.model_type)
    head = _hf_head(hf_config, list(arrays), config_path)
    return (config, head) + arrays_to_project(config, head, arrays, hf_dir)


def _with_prefix(arrays: Dict[str, np.ndarray], model_type: str) -> Dict[str, np.ndarray]:
    """HF names with the family prefix: a bare XModel (and the original LUKE) saves without."""
    prefix = HF_PREFIX[model_type] + "."
    if any(n.startswith(prefix) for n in arrays):
        return arrays
    return {prefix + n if n.startswith(BACKBONE_PARTS) else n: v for n, v in arrays.items()}


def arrays_to_project(config: ModelConfig, head: Optional[str], arrays: Dict[str, np.ndarray],
                      source: str) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """(project-named arrays, notes) from HF-named ones; anything that does not fit is an error."""
    _check_tied(arrays, source=source)
    _check_buffers(arrays, config, source)
    notes = _fill_entity_queries(arrays, config)
    for name in [n for n in arrays if n.endswith(".decoder.bias")]:
        # a tied bias may be saved under the decoder's name only
        arrays.setdefault(name[: -len(".decoder.bias")] + ".bias", arrays[name])
    out, missing = {}, []
    for ours, theirs in all_pairs(config, head):
        if all(t in arrays for t in theirs):
            out[ours] = np.concatenate([arrays[t] for t in theirs], 0)
        elif ours.startswith("backbone.pooler."):
            notes.append(f"{ours} not in the source; initialised fresh")
        else:
            missing.append(theirs[0])
    used = {t for _, theirs in all_pairs(config, head) for t in theirs}
    unexpected = [n for n in arrays if n not in used and not n.endswith(TIED_OR_BUFFER)]
    if missing or unexpected:
        listed = [f"missing {n}" for n in missing] + [f"unexpected {n}" for n in unexpected]
        raise UserError(f"{source}: weights do not fit {config.model_type} "
                        f"{head or 'backbone'}: {'; '.join(listed[:20])}"
                        + (f" (+{len(listed) - 20} more)" if len(listed) > 20 else ""))
    return out, notes


def _fill_entity_queries(arrays: Dict[str, np.ndarray], config: ModelConfig) -> List[str]:
    """LUKE pretrained with plain attention has no w2e/e2w/e2e: they start as the query."""
    if config.model_type != "luke" or not config.use_entity_aware_attention:
        return []
    filled = []
    for i in range(config.num_hidden_layers):
        base = f"luke.encoder.layer.{i}.attention.self."
        for name in ENTITY_QUERIES:
            for part in ("weight", "bias"):
                if base + f"{name}.{part}" not in arrays and base + f"query.{part}" in arrays:
                    arrays[base + f"{name}.{part}"] = arrays[base + f"query.{part}"].copy()
                    filled.append(i)
    if not filled:
        return []
    return [f"no w2e/e2w/e2e query weights in {len(set(filled))} layer(s) (pretrained with "
            "plain attention); initialised them from each layer's query"]


def _check_tied(arrays: Dict[str, np.ndarray], source: str) -> None:
    """The project ties the MLM decoder to the word embeddings (LUKE's entity decoder to the
    entity embeddings); an untied one cannot come."""
    tables = {"word": [n for n in arrays if n.endswith(".embeddings.word_embeddings.weight")],
              "entity": [n for n in arrays if n.endswith("entity_embeddings.entity_embeddings.weight")]}
    for name in (n for n in arrays if n.endswith("decoder.weight")):
        kind = "entity" if name.startswith("entity_predictions.") else "word"
        if tables[kind] and not np.array_equal(arrays[name], arrays[tables[kind][0]]):
            raise UserError(f"{source}: {name} is not tied to the {kind} embeddings "
                            "(expected tie_word_embeddings)")


def project_to_hf(model_dir: str) -> Tuple[Dict, Dict[str, np.ndarray]]:
    """(HF config.json mapping, HF-named arrays) from a project model directory."""
    config = load_model_config(model_dir)
    arrays = read_weights(find_weights(model_dir))
    head = config.head
    out = {}
    if config.model_type == "luke":
        skip_pooler = head in LUKE_NO_POOLER
    else:
        skip_pooler = head in NO_POOLER or (config.model_type == "roberta" and head in
                                            ("pretraining", "sequence_classification"))
    for ours, theirs in all_pairs(config, head):
        if skip_pooler and ours.startswith("backbone.pooler."):
            continue
        if ours not in arrays:
            raise UserError(f"{model_dir}: weights lack {ours}")
        for name, part in zip(theirs, np.split(arrays[ours], len(theirs), axis=0)):
            out[name] = np.ascontiguousarray(part)
    if config.model_type == "luke" and "mlm.bias" in arrays:
        # transformers 5's LukeForMaskedLM does not tie its word decoder: it must be in the file
        out["lm_head.decoder.weight"] = out["luke.embeddings.word_embeddings.weight"]
    return config_to_hf(config, head), out


def validate(config: ModelConfig, head: Optional[str], arrays: Dict[str, np.ndarray],
             source: str) -> Dict[str, np.ndarray]:
    """Load the arrays into a freshly built model: names and shapes must fit exactly."""
    model = build_model(config, head)
    load_into(model, arrays, source, fresh_ok=("backbone.pooler.",))
    return cell_arrays(model)


def _copy_tokenizer(src_dir: str, dst_dir: str) -> None:
    """The tokenizer files (and a LUKE entity vocabulary) that src_dir holds."""
    for name in TOKENIZER_FILES + ENTITY_VOCAB_FILES:
        if os.path.isfile(os.path.join(src_dir, name)):
            shutil.copy(os.path.join(src_dir, name), os.path.join(dst_dir, name))


def _lower_case_of(hf_dir: str) -> Optional[bool]:
    path = os.path.join(hf_dir, "tokenizer_config.json")
    return read_json(path).get("do_lower_case") if os.path.isfile(path) else None


def _write_project(tmp: str, config: ModelConfig, arrays: Dict[str, np.ndarray], fmt: str) -> None:
    write_weights(arrays, os.path.join(tmp, FORMATS[fmt]))
    config.save(tmp)


def _write_hf(tmp: str, hf_config: Dict, arrays: Dict[str, np.ndarray], config: ModelConfig
              ) -> None:
    with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as f:
        json.dump(hf_config, f, indent=2)
    write_weights(arrays, os.path.join(tmp, "model.safetensors"))
    if config.do_lower_case is not None:
        with open(os.path.join(tmp, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"do_lower_case": config.do_lower_case}, f, indent=2)


def convert(src: str, dst: str, fmt: str = "safetensors", config_path: Optional[str] = None,
            vocab: Optional[str] = None, allow_pickle: bool = False,
            overwrite: bool = False) -> List[str]:
    """Convert whatever `src` holds into `dst`; returns notes for the user.

    An HF directory (config.json) becomes a project directory, a project directory
    (config.yaml) an HF one, a model zoo .ckpt (with --config) or the original LUKE release
    (metadata.json + pytorch_model.bin) a project directory.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown --format '{fmt}'; expected one of {', '.join(FORMATS)}")
    if os.path.isfile(os.path.join(src, "config.json")):
        config, head, arrays, notes = hf_to_project(src, allow_pickle)
        config.do_lower_case = _lower_case_of(src)
        _write_converted(dst, config, head, arrays, fmt, overwrite, src, vocab)
        return notes + [f"HF {config.model_type} {head or 'backbone'} -> project ({fmt})"]
    if os.path.isfile(os.path.join(src, "config.yaml")):
        config = load_model_config(src)
        hf_config, arrays = project_to_hf(src)
        with atomic_dir(dst, overwrite) as tmp:
            _write_hf(tmp, hf_config, arrays, config)
            _copy_tokenizer(src, tmp)
        return [f"project {config.model_type} -> HF {hf_config['architectures'][0]}"]
    if os.path.isfile(os.path.join(src, "metadata.json")):
        config, head, arrays, notes = original_luke_to_project(src, allow_pickle)
        _write_converted(dst, config, head, arrays, fmt, overwrite, src, vocab)
        return notes + [f"original LUKE {head or 'backbone'} -> project ({fmt})"]
    if os.path.isfile(src) and src.endswith(".ckpt"):
        return _convert_zoo(src, dst, fmt, config_path, vocab, overwrite)
    raise UserError(f"{src}: expected an HF directory (config.json), a project model "
                    "directory (config.yaml), the original LUKE release (metadata.json + "
                    "pytorch_model.bin) or a model zoo .ckpt file")


def original_luke_to_project(src: str, allow_pickle: bool
                             ) -> Tuple[ModelConfig, Optional[str], Dict[str, np.ndarray], List[str]]:
    """studio-ousia's release: metadata.json's model_config, pytorch_model.bin under LukeModel's
    names (with lm_head / entity_predictions when it is the pretraining checkpoint)."""
    path = os.path.join(src, "metadata.json")
    model_config = read_json(path).get("model_config")
    if not isinstance(model_config, dict):
        raise UserError(f"{path}: no 'model_config' object; expected the original LUKE "
                        "release's metadata.json")
    config = config_from_hf({**model_config, "model_type": "luke",
                             "use_entity_aware_attention": True}, path)
    weights = os.path.join(src, "pytorch_model.bin")
    if not os.path.isfile(weights):
        raise UserError(f"{src}: no pytorch_model.bin beside metadata.json")
    arrays = _with_prefix(_read_torch_bin(weights, allow_pickle), "luke")
    head = "masked_lm" if any(n.startswith("lm_head.") for n in arrays) else None
    return (config, head) + arrays_to_project(config, head, arrays, src)


def _write_converted(dst: str, config: ModelConfig, head: Optional[str],
                     arrays: Dict[str, np.ndarray], fmt: str, overwrite: bool,
                     tokenizer_dir: Optional[str], vocab: Optional[str]) -> None:
    """Check the arrays against a freshly built model, then write the project directory
    with the tokenizer files of tokenizer_dir and --vocab."""
    config.head = head
    arrays = validate(config, head, arrays, tokenizer_dir or dst)
    with atomic_dir(dst, overwrite) as tmp:
        _write_project(tmp, config, arrays, fmt)
        if tokenizer_dir and os.path.isdir(tokenizer_dir):
            _copy_tokenizer(tokenizer_dir, tmp)
        if vocab:
            _put_vocab(vocab, tmp)


def _put_vocab(vocab: str, folder: str) -> None:
    """--vocab: a vocab.txt, or a folder of tokenizer files (LUKE: BPE files + entity vocabulary)."""
    if os.path.isdir(vocab):
        _copy_tokenizer(vocab, folder)
    elif os.path.isfile(vocab):
        shutil.copy(vocab, os.path.join(folder, "vocab.txt"))
    else:
        raise UserError(f"{vocab}: vocabulary file or tokenizer folder not found")


def _convert_zoo(src: str, dst: str, fmt: str, config_path: Optional[str],
                 vocab: Optional[str], overwrite: bool) -> List[str]:
    if not config_path:
        raise UserError(f"{src}: a model zoo checkpoint carries no config; pass --config "
                        "configs/models/<size>.yaml")
    config = load_model_config(config_path)
    if config.model_type == "luke":
        arrays, skipped = zoo_luke_to_hf(read_weights(src), src)
        head = "masked_lm" if any(n.startswith("lm_head.") for n in arrays) else None
        arrays, notes = arrays_to_project(config, head, arrays, src)
    else:
        arrays, skipped = zoo_to_project(read_weights(src), config, src)
        head, notes = ("pretraining" if "mlm.bias" in arrays else None), []
    _write_converted(dst, config, head, arrays, fmt, overwrite, None, vocab)
    return notes + [f"zoo {config.model_type} -> project ({fmt}); {len(skipped)} entries left "
                    "out (optimizer state, fine-tuning heads, unused tables)"]
