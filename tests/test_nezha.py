"""NEZHA: the relative table against the paper's formula, the whole model against an
independent numpy implementation of that formula, and checkpoints in transformers 4.x naming."""
import json

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers as T
from scipy.special import erf

from hf_models import TINY, sample_inputs
from src.models import build_model, load_pretrained
from src.models.config import ModelConfig
from src.models.conversion import convert
from src.models.relative import FunctionalRelativePositions
from src.models.weights import cell_arrays, read_weights

CONFIG = ModelConfig(model_type="nezha", position_embedding_type="functional_relative",
                     max_relative_position=5, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, **TINY)


def paper_table(length, depth, k):
    """a[i, j, 2m] = sin(d / 10000^(2m/depth)), a[i, j, 2m+1] = cos(...), d = clip(j - i) + k.

    The released NEZHA code indexes the sinusoid by the clipped distance shifted by k.
    """
    out = np.zeros((length, length, depth))
    for i in range(length):
        for j in range(length):
            d = min(max(j - i, -k), k) + k
            for m in range(depth // 2):
                angle = d / 10000 ** (2 * m / depth)
                out[i, j, 2 * m], out[i, j, 2 * m + 1] = np.sin(angle), np.cos(angle)
    return out


@pytest.mark.parametrize("length,depth,k", [(9, 8, 3), (20, 16, 64), (12, 6, 1)])
def test_relative_table_is_the_formula(length, depth, k):
    ours = FunctionalRelativePositions(depth, k)(length).asnumpy()
    assert np.abs(ours - paper_table(length, depth, k)).max() < 1e-6


def layer_norm(x, gamma, beta, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * gamma + beta


def reference(w, config, ids, mask, types):
    """NEZHA forward in float64 numpy, written from the paper: e_ij = q_i.(k_j + aK_ij)/sqrt(d),
    z_i = sum_j softmax(e)_ij (v_j + aV_ij)."""
    heads, depth = config.num_attention_heads, config.head_dim
    eps = config.layer_norm_eps
    length = ids.shape[1]
    rel = paper_table(length, depth, config.max_relative_position)
    x = w["backbone.embeddings.word_embeddings.embedding_table"][ids] + \
        w["backbone.embeddings.token_type_embeddings.embedding_table"][types]
    x = layer_norm(x, w["backbone.embeddings.layer_norm.gamma"], w["backbone.embeddings.layer_norm.beta"], eps)
    for layer in range(config.num_hidden_layers):
        p = f"backbone.encoder.layers.{layer}."
        qkv = x @ w[p + "attention.qkv.weight"].T + w[p + "attention.qkv.bias"]
        q, k, v = (t.reshape(*ids.shape, heads, depth) for t in np.split(qkv, 3, -1))
        scores = (np.einsum("bihd,bjhd->bhij", q, k) + np.einsum("bihd,ijd->bhij", q, rel))
        scores = scores / np.sqrt(depth) + np.where(mask[:, None, None, :] > 0, 0.0, -1e9)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = np.einsum("bhij,bjhd->bihd", probs, v) + np.einsum("bhij,ijd->bihd", probs, rel)
        attn = ctx.reshape(*ids.shape, -1) @ w[p + "attention.output.weight"].T + w[p + "attention.output.bias"]
        x = layer_norm(x + attn, w[p + "attention_norm.gamma"], w[p + "attention_norm.beta"], eps)
        h = x @ w[p + "intermediate.weight"].T + w[p + "intermediate.bias"]
        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
        h = h @ w[p + "output.weight"].T + w[p + "output.bias"]
        x = layer_norm(x + h, w[p + "output_norm.gamma"], w[p + "output_norm.beta"], eps)
    pooled = np.tanh(x[:, 0] @ w["backbone.pooler.dense.weight"].T + w["backbone.pooler.dense.bias"])
    return x, pooled


@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_model_matches_numpy_reference(mode):
    ms.set_seed(3)
    model = build_model(CONFIG)
    weights = {k: v.astype(np.float64) for k, v in cell_arrays(model).items()}
    ids, mask, types = sample_inputs("nezha", batch=3, length=13)
    call = ms.jit(model) if mode == "graph" else model
    sequence, pooled = call(ms.Tensor(ids), ms.Tensor(mask), ms.Tensor(types))
    ref_sequence, ref_pooled = reference(weights, CONFIG, ids, mask, types)
    assert np.abs(sequence.asnumpy() - ref_sequence).max() < 1e-4
    assert np.abs(pooled.asnumpy() - ref_pooled).max() < 1e-4


def nezha_4x_checkpoint(folder):
    """A NezhaForPreTraining checkpoint as transformers 4.x saved it: BERT names under
    `nezha.`, no absolute positions, and each layer's relative table as a buffer."""
    torch.manual_seed(0)
    bert = T.BertForPreTraining(T.BertConfig(**TINY))
    with torch.no_grad():
        for p in bert.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    arrays = {k.replace("bert.", "nezha.", 1): v.numpy() for k, v in bert.state_dict().items()
              if "position" not in k and "decoder" not in k}
    table = paper_table(TINY["max_position_embeddings"], CONFIG.head_dim, 5).astype(np.float32)
    for layer in range(TINY["num_hidden_layers"]):
        arrays[f"nezha.encoder.layer.{layer}.attention.self.relative_positions_encoding."
               "positions_encoding"] = table
    folder.mkdir()
    from safetensors.numpy import save_file
    save_file(arrays, str(folder / "model.safetensors"))
    hf_config = dict(TINY, model_type="nezha", architectures=["NezhaForPreTraining"],
                     max_relative_position=5, hidden_act="gelu", layer_norm_eps=1e-12)
    (folder / "config.json").write_text(json.dumps(hf_config))
    return arrays


def test_transformers_4x_checkpoint_round_trip(tmp_path):
    original = nezha_4x_checkpoint(tmp_path / "hf")
    convert(str(tmp_path / "hf"), str(tmp_path / "ours"))
    convert(str(tmp_path / "ours"), str(tmp_path / "back"))
    back = read_weights(str(tmp_path / "back" / "model.safetensors"))
    kept = {k: v for k, v in original.items() if "positions_encoding" not in k}
    assert back.keys() == kept.keys()
    assert all(np.array_equal(back[k], kept[k]) for k in kept)
    assert json.loads((tmp_path / "back" / "config.json").read_text())["architectures"] == \
        ["NezhaForPreTraining"]
    model = load_pretrained(str(tmp_path / "ours"))
    ids, mask, types = sample_inputs("nezha")
    weights = {k: v.astype(np.float64) for k, v in cell_arrays(model).items()}
    config = ModelConfig(**dict(vars(CONFIG), head=None))
    sequence, _ = model(ms.Tensor(ids), ms.Tensor(mask), ms.Tensor(types))
    assert np.abs(sequence.asnumpy() - reference(weights, config, ids, mask, types)[0]).max() < 1e-4


def test_wrong_relative_table_is_refused(tmp_path):
    from safetensors.numpy import load_file, save_file
    nezha_4x_checkpoint(tmp_path / "hf")
    arrays = load_file(str(tmp_path / "hf" / "model.safetensors"))
    name = "nezha.encoder.layer.0.attention.self.relative_positions_encoding.positions_encoding"
    arrays[name] = arrays[name] + 0.5
    save_file(arrays, str(tmp_path / "hf" / "model.safetensors"))
    from src.errors import UserError
    with pytest.raises(UserError, match="not NEZHA's functional relative encoding"):
        convert(str(tmp_path / "hf"), str(tmp_path / "ours"))
