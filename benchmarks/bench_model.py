"""Model speed and memory: our MindSpore backbone (graph mode) vs HF transformers on PyTorch.

One process times both sides, interleaved (ours, peer, ours, peer, ...), and reports the
median of the repeats; the matmul ceiling is timed between the two sides in every repeat.
Each (row, mode) is timed in a process of its own (MindSpore's pool keeps what a row
allocated, and all rows in one process ran out of memory), and peak resident memory is
measured per side in a fresh subprocess each, so the two frameworks' allocators never
share a process. See benchmarks/README.md for what every number means.

    .venv/bin/python benchmarks/bench_model.py              # all rows and modes (deploy too), ~25 min
    .venv/bin/python benchmarks/bench_model.py --quick      # smoke run, ~3 min
    .venv/bin/python benchmarks/bench_model.py --rows bert-8x128 --repeats 7 --threads 2
    .venv/bin/python benchmarks/bench_model.py --rows bert-1x128,bert-8x128 --modes deploy

Mode "deploy" (rows bert-1x128 and bert-8x128) times five inference sides interleaved: ours
eager (jit), HF torch, our MINDIR through nn.GraphCell, our ONNX through onnxruntime, and HF's
model exported by torch.onnx through onnxruntime (the deployment peer).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (model yaml, family, batch, seq, our MLM head: "masked" projects only the masked
# positions (our default), "all" projects every position as HF does)
ROWS = {
    "bert-8x128": ("bert_base", "bert", 8, 128, "masked"),
    "bert-2x512": ("bert_base", "bert", 2, 512, "masked"),
    "roberta-8x128": ("roberta_base", "roberta", 8, 128, "masked"),
    "albert-8x128": ("albert_base", "albert", 8, 128, "masked"),
    "bert-8x128-allpos": ("bert_base", "bert", 8, 128, "all"),
    "luke-8x128": ("luke_base", "luke", 8, 128, "masked"),
    "bert-1x128": ("bert_base", "bert", 1, 128, "masked"),
}
MASK_RATE = 0.15
# LUKE rows: entities per row beside the words, and the released max_mention_length
ENTITIES, MENTION = 32, 30
# the deployment comparison's rows (latency at batch 1, throughput at batch 8); the first
# is timed in that mode only
DEPLOY_ROWS = ("bert-1x128", "bert-8x128")
DEPLOY_ONLY = ("bert-1x128",)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    p.add_argument("--modes", default="inference,train,deploy",
                   help="inference, train and/or deploy (exported graphs and onnxruntime)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per side (median)")
    p.add_argument("--iters", type=int, default=1, help="calls per timed repeat")
    p.add_argument("--warmup", type=int, default=5,
                   help="untimed calls after compilation (with 2, our first two timed repeats "
                        "were still 15-40%% slower than the rest)")
    p.add_argument("--threads", type=int, default=2, help="threads for both frameworks")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: bert-8x128 only, 2 repeats, 1 iter, no memory")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--ms-threads", type=int, default=0,
                   help="MindSpore runtime_num_threads if different from --threads (experiments)")
    p.add_argument("--jit-level", default="O0", help="ms.jit(jit_level=...) for our side")
    p.add_argument("--context", action="append", default=[],
                   help="extra ms.set_context key=value (repeatable), e.g. enable_graph_kernel=True")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="hidden and attention dropout on both sides (default 0: deterministic)")
    p.add_argument("--variant", default="",
                   help="apply benchmarks/experiments/variants.py:NAME to our model (experiments)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "model"),
                   help="output path without extension (.json and .md are written)")
    # internal: a child process that times one "row:mode" pair, or measures one "row:mode:side"
    p.add_argument("--pair", default="", help=argparse.SUPPRESS)
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.iters, args.warmup, args.no_memory = \
            "bert-8x128", 2, 1, 1, True
    args.rows = [r for r in args.rows.split(",") if r]
    args.modes = [m for m in args.modes.split(",") if m]
    for r in args.rows:
        if r not in ROWS:
            p.error(f"unknown row {r!r}; expected one of {', '.join(ROWS)}")
    return args


def set_thread_env(threads: int) -> None:
    """Must run before mindspore/torch import: both read the OpenMP variables at load time."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only


def apply_context(items):
    """ms.set_context(key=value) for each "key=value" (the value read as a YAML scalar)."""
    import mindspore as ms
    import yaml
    for item in items:
        key, _, value = item.partition("=")
        ms.set_context(**{key: yaml.safe_load(value)})


# --------------------------------------------------------------------------- setup

def init_frameworks(args):
    import mindspore as ms
    import torch
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    # the trainer's own CPU setup (threads: MindSpore's default is 25 on any machine)
    from src.training.distributed import setup_cpu_runtime
    setup_cpu_runtime(args.ms_threads or args.threads)
    apply_context(args.context)
    if args.variant:
        sys.path.insert(0, os.path.join(ROOT, "benchmarks", "experiments"))
        import variants
        variants.apply(args.variant)


def make_batch(family, vocab, batch, seq, seed=0):
    """Random ids, no padding, ~15% masked positions per row (sorted), NSP/SOP labels."""
    import numpy as np
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, min(vocab, 30000), size=(batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    types = np.zeros((batch, seq), np.int32)
    if family not in ("roberta", "luke"):  # one token type there
        types[:, seq // 2:] = 1
    n_masked = max(1, int(round(MASK_RATE * seq)))
    positions = np.stack([np.sort(rng.choice(np.arange(1, seq), n_masked, replace=False))
                          for _ in range(batch)]).astype(np.int32)
    masked_ids = np.take_along_axis(ids, positions, 1)
    weights = np.ones(positions.shape, np.float32)
    pair = rng.integers(0, 2, size=(batch,)).astype(np.int32)
    full_labels = np.zeros((batch, seq), np.int32)
    full_weights = np.zeros((batch, seq), np.float32)
    np.put_along_axis(full_labels, positions, masked_ids, 1)
    np.put_along_axis(full_weights, positions, 1.0, 1)
    data = dict(ids=ids, mask=mask, types=types, positions=positions, masked_ids=masked_ids,
                weights=weights, pair=pair, full_labels=full_labels, full_weights=full_weights)
    if family == "luke":
        data.update(make_entities(rng, batch, seq))
    return data


ENTITY_KEYS = ("entity_ids", "entity_mask", "entity_types", "entity_positions")


def make_entities(rng, batch, seq, entity_vocab=500000):
    """ENTITIES random entities per row, mentions of 1-3 tokens padded to MENTION with -1,
    ~15% of them masked for the masked-entity objective."""
    import numpy as np
    ids = rng.integers(5, entity_vocab, size=(batch, ENTITIES)).astype(np.int32)
    positions = np.full((batch, ENTITIES, MENTION), -1, np.int32)
    for row in range(batch):
        for e in range(ENTITIES):
            size = 1 + e % 3
            start = int(rng.integers(1, seq - size))
            positions[row, e, :size] = np.arange(start, start + size)
    n_masked = max(1, int(round(MASK_RATE * ENTITIES)))
    masked = np.stack([np.sort(rng.choice(ENTITIES, n_masked, replace=False))
                       for _ in range(batch)]).astype(np.int32)
    full = np.full((batch, ENTITIES), -100, np.int64)
    np.put_along_axis(full, masked, np.take_along_axis(ids, masked, 1), 1)
    return dict(entity_ids=ids, entity_mask=np.ones((batch, ENTITIES), np.int32),
                entity_types=np.zeros((batch, ENTITIES), np.int32), entity_positions=positions,
                masked_entities=masked, masked_entity_ids=np.take_along_axis(ids, masked, 1),
                entity_weights=np.ones(masked.shape, np.float32), entity_labels=full)


def our_config(yaml_name, dropout=0.0):
    sys.path.insert(0, ROOT)
    from src.models.config import load_model_config
    return load_model_config(os.path.join(ROOT, "configs", "models", yaml_name + ".yaml"),
                             [f"hidden_dropout_prob={dropout}",
                              f"attention_probs_dropout_prob={dropout}",
                              f"classifier_dropout_prob={dropout}"])


def hf_model(config, family, head):
    import torch
    import transformers as T
    common = dict(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                  num_hidden_layers=config.num_hidden_layers,
                  num_attention_heads=config.num_attention_heads,
                  intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
                  hidden_dropout_prob=config.hidden_dropout_prob,
                  attention_probs_dropout_prob=config.attention_probs_dropout_prob,
                  max_position_embeddings=config.max_position_embeddings,
                  type_vocab_size=config.type_vocab_size, layer_norm_eps=config.layer_norm_eps,
                  pad_token_id=config.pad_token_id)
    if family == "albert":
        cfg = T.AlbertConfig(embedding_size=config.embedding_size, num_hidden_groups=1,
                             inner_group_num=1,
                             classifier_dropout_prob=config.classifier_dropout_prob, **common)
        cls = T.AlbertModel if head is None else T.AlbertForPreTraining
    elif family == "roberta":
        cfg = T.RobertaConfig(**common)
        cls = T.RobertaModel if head is None else T.RobertaForMaskedLM
    elif family == "luke":
        cfg = T.LukeConfig(entity_vocab_size=config.entity_vocab_size,
                           entity_emb_size=config.entity_emb_size,
                           use_entity_aware_attention=config.use_entity_aware_attention, **common)
        cls = T.LukeModel if head is None else T.LukeForMaskedLM
    else:
        cfg = T.BertConfig(**common)
        cls = T.BertModel if head is None else T.BertForPreTraining
    torch.manual_seed(0)
    return cls(cfg)


class Side:
    """One framework's callable for one (row, mode): call() runs one step and blocks."""

    def __init__(self, name, call, describe):
        self.name, self.call, self.describe = name, call, describe


def ours_inference(args, config, data):
    import mindspore as ms
    from src.models import build_model
    model = build_model(config)
    model.set_train(False)
    keys = ("ids", "mask", "types") + (ENTITY_KEYS if config.model_type == "luke" else ())
    inputs = [ms.Tensor(data[k]) for k in keys]

    def forward(*batch):
        return model(*batch)

    fn = ms.jit(forward, jit_level=args.jit_level)
    return Side("ours", lambda: fn(*inputs)[0].asnumpy(), "Backbone (sequence+pooled), eval")


def ours_train(args, config, family, data, head_mode):
    import mindspore as ms
    import numpy as np
    from src.models import build_model
    from src.training.config import TrainConfig
    from src.training.losses import pretraining_loss, weighted_cross_entropy
    from src.training.optimizers import build_optimizer
    from src.training.step import TrainStep
    head = "masked_lm" if family == "roberta" else "pretraining"
    model = build_model(config, head)
    model.set_train(True)
    optimizer = build_optimizer(model.trainable_params(), "adamw",
                                np.full(100000, 1e-4, np.float32), weight_decay=0.01)
    use_pair = family not in ("roberta", "luke")
    if family == "luke":  # words and entities, both projected at their masked positions only
        keys = ("ids", "mask", "types") + ENTITY_KEYS + (
            "positions", "masked_entities", "masked_ids", "weights", "masked_entity_ids",
            "entity_weights")

        def loss_fn(*batch):
            mlm, entity = model(*batch[:9])
            return (weighted_cross_entropy(mlm, batch[9], batch[10])
                    + weighted_cross_entropy(entity, batch[11], batch[12]))
    elif head_mode == "masked":
        keys = ("ids", "mask", "types", "positions", "masked_ids", "weights", "pair")

        def loss_fn(ids, mask, types, positions, labels, weights, pair):
            out = model(ids, mask, types, positions)
            if not use_pair:
                return pretraining_loss(out, labels, weights)
            return pretraining_loss(out[0], labels, weights, out[1], pair)
    else:  # project every position, loss only where weight > 0 (as HF with -100 labels)
        keys = ("ids", "mask", "types", "full_labels", "full_weights", "pair")

        def loss_fn(ids, mask, types, labels, weights, pair):
            out = model(ids, mask, types)
            if not use_pair:
                return weighted_cross_entropy(out, labels, weights)
            return pretraining_loss(out[0], labels, weights, out[1], pair)

    # the trainer's own step: micro-batch gradients, global-norm clipping, finiteness guard, AdamW
    step = TrainStep(loss_fn, optimizer, TrainConfig(max_grad_norm=1.0))
    inputs = tuple(ms.Tensor(data[k]) for k in keys)
    what = ("MLM vocab projection on masked positions only" if head_mode == "masked"
            else "MLM vocab projection on all positions")
    return Side("ours", lambda: step.run([inputs]), what)


def peer_inference(config, family, data):
    import torch
    model = hf_model(config, family, None).eval()
    inputs = peer_inputs(family, data)

    def call():
        with torch.inference_mode():
            return model(**inputs).last_hidden_state.numpy()

    impl = getattr(model.config, "_attn_implementation", None)
    return Side("peer", call, f"{type(model).__name__} eval, attn={impl}")


def peer_inputs(family, data):
    """transformers' keyword inputs of a batch (token types where the family has two)."""
    import torch
    names = dict(ids="input_ids", mask="attention_mask")
    if family not in ("roberta", "luke"):
        names["types"] = "token_type_ids"
    if family == "luke":
        names.update(entity_ids="entity_ids", entity_mask="entity_attention_mask",
                     entity_types="entity_token_type_ids", entity_positions="entity_position_ids")
    return {theirs: torch.tensor(data[ours], dtype=torch.long) for ours, theirs in names.items()}


def peer_train(config, family, data):
    import torch
    model = hf_model(config, family, "pretraining").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    labels = torch.full(data["ids"].shape, -100, dtype=torch.long)
    labels.scatter_(1, torch.tensor(data["positions"], dtype=torch.long),
                    torch.tensor(data["masked_ids"], dtype=torch.long))
    inputs = dict(peer_inputs(family, data), labels=labels)
    if family == "luke":
        inputs["entity_labels"] = torch.tensor(data["entity_labels"], dtype=torch.long)
    elif family != "roberta":
        key = "sentence_order_label" if family == "albert" else "next_sentence_label"
        inputs[key] = torch.tensor(data["pair"], dtype=torch.long)

    def call():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    return Side("peer", call, f"{type(model).__name__} train, labels=-100 off the masked "
                              "positions (vocab projection on all positions), "
                              "clip_grad_norm_ 1.0, torch AdamW")


def build_side(args, row, mode, which):
    yaml_name, family, batch, seq, head_mode = ROWS[row]
    config = our_config(yaml_name, args.dropout)
    data = make_batch(family, config.vocab_size, batch, seq)
    if which == "ours":
        return ours_inference(args, config, data) if mode == "inference" else \
            ours_train(args, config, family, data, head_mode)
    return peer_inference(config, family, data) if mode == "inference" else \
        peer_train(config, family, data)


# --------------------------------------------------------------------------- deployment

def ours_exported(args, config, data, folder, file_format):
    """Our backbone exported as export.py builds it (portable form, plain ops), run as
    deployed: MINDIR through mindspore.load + nn.GraphCell, ONNX through onnxruntime."""
    import mindspore as ms
    from mindspore import nn
    from src.deploy.exporter import write_graph
    from src.deploy.signature import concrete, model_inputs
    from src.models import build_model, portable
    with portable.portable(onnx=file_format == "ONNX"):
        model = build_model(config)
    model.set_train(False)
    batch, seq = data["ids"].shape
    specs = concrete(model_inputs(config, None), {"batch": batch, "seq": seq})
    path = write_graph(model, specs, os.path.join(folder, f"ours_{file_format.lower()}"), file_format)
    arrays = [data[k] for k in ("ids", "mask", "types")]
    if file_format == "MINDIR":
        graph = nn.GraphCell(ms.load(path))
        inputs = [ms.Tensor(a) for a in arrays]
        return Side("ours MINDIR", lambda: graph(*inputs)[0].asnumpy(),
                    "export.py's MINDIR of the Backbone, nn.GraphCell")
    session = ort_session(path, args.threads)
    feed = dict(zip([i.name for i in session.get_inputs()], arrays))
    return Side("ours ONNX", lambda: session.run(None, feed)[0],
                "export.py's ONNX of the Backbone, onnxruntime CPU")


def peer_exported(args, config, family, data, folder):
    """HF's model exported by torch.onnx (TorchScript exporter, opset 17), run by onnxruntime."""
    import torch
    model = hf_model(config, family, None).eval()
    names = ["input_ids", "attention_mask"] + ([] if family == "roberta" else ["token_type_ids"])

    class Outputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            out = self.model(**dict(zip(names, inputs)))
            return out.last_hidden_state, out.pooler_output

    keys = ("ids", "mask", "types")[:len(names)]
    path = os.path.join(folder, "hf.onnx")
    torch.onnx.export(Outputs(), tuple(torch.tensor(data[k], dtype=torch.long) for k in keys),
                      path, input_names=names, dynamo=False, opset_version=17)
    session = ort_session(path, args.threads)
    feed = {name: data[k].astype("int64") for name, k in zip(names, keys)}
    return Side("HF ONNX", lambda: session.run(None, feed)[0],
                f"{type(model).__name__} by torch.onnx.export (opset 17), onnxruntime CPU")


def ort_session(path, threads):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_deploy(args, row):
    """Five inference sides timed interleaved (the order rotates each repeat); median of repeats."""
    yaml_name, family, batch, seq, _ = ROWS[row]
    config = our_config(yaml_name)
    data = make_batch(family, config.vocab_size, batch, seq)
    with tempfile.TemporaryDirectory() as folder:
        sides = [ours_inference(args, config, data), peer_inference(config, family, data),
                 ours_exported(args, config, data, folder, "MINDIR"),
                 ours_exported(args, config, data, folder, "ONNX"),
                 peer_exported(args, config, family, data, folder)]
        for side in sides:
            for _ in range(1 + args.warmup):
                side.call()
        times = {side.name: [] for side in sides}
        busy_before, own_before, wall_before = cpu_busy_s(), own_cpu_s(), time.perf_counter()
        for rep in range(args.repeats):
            for side in sides[rep % len(sides):] + sides[:rep % len(sides)]:
                time.sleep(SETTLE_S)
                times[side.name].append(timed(side.call, args.iters))
        wall = time.perf_counter() - wall_before
        other = (cpu_busy_s() - busy_before) - (own_cpu_s() - own_before)
    tokens = batch * seq
    med = {name: statistics.median(values) for name, values in times.items()}
    return dict(row=row, mode="deploy", family=family, batch=batch, seq=seq, tokens=tokens,
                sides={side.name: dict(describe=side.describe, median_s=med[side.name],
                                       latency_ms=med[side.name] * 1e3,
                                       tok_s=tokens / med[side.name], times=times[side.name])
                       for side in sides},
                other_processes_cpu_share=max(0.0, other) / (wall * (os.cpu_count() or 1)),
                mindir_over_hf_onnx=med["HF ONNX"] / med["ours MINDIR"],
                onnx_over_hf_onnx=med["HF ONNX"] / med["ours ONNX"])


def deploy_markdown(rows):
    names = list(rows[0]["sides"])
    lines = ["", "Deployment (inference; batch 1: latency ms, batch 8: tokens/s; median of repeats):", "",
             "| row | " + " | ".join(names) + " | ours MINDIR / HF ONNX | ours ONNX / HF ONNX "
             "| other CPU |", "|---|" + "---:|" * (len(names) + 3)]
    for r in rows:
        unit = (lambda s: f"{s['latency_ms']:.1f} ms") if r["batch"] == 1 else \
            (lambda s: f"{s['tok_s']:.0f}")
        lines.append(f"| {r['row']} | " + " | ".join(unit(r["sides"][n]) for n in names)
                     + f" | **{r['mindir_over_hf_onnx']:.2f}** | {r['onnx_over_hf_onnx']:.2f} "
                     f"| {r.get('other_processes_cpu_share', 0.0):.0%} |")
    lines.append("")
    lines += [f"- {name}: {desc}" for name, desc in
              ((n, rows[0]["sides"][n]["describe"]) for n in names)]
    return lines


# --------------------------------------------------------------------------- flops

def model_flops(row, mode):
    """Useful matmul FLOPs of one step (multiply-add = 2), counted the same for both sides.

    Encoder: QKV, attention output, FFN projections and the two attention batched matmuls.
    Training adds the pretraining head on the masked positions only (the vocabulary matmul
    the peer spends on unmasked positions is not useful work and is not counted) and
    multiplies by 3 (forward + two backward matmuls per forward matmul).
    """
    yaml_name, family, batch, seq, _ = ROWS[row]
    c = our_config(yaml_name)
    entities = ENTITIES if family == "luke" else 0
    length = seq + entities  # LUKE's entities are extra positions in every layer
    h, i, tokens = c.hidden_size, c.intermediate_size, batch * length
    # LUKE with entity-aware attention projects two queries per position (word: query and
    # w2e; entity: e2w and e2e): 5 hidden x hidden projections instead of 4
    projections = 5 if entities and c.use_entity_aware_attention else 4
    per_layer = 2 * tokens * (projections * h * h + 2 * h * i) + 2 * 2 * batch * length * length * h
    total = c.num_hidden_layers * per_layer + 2 * batch * h * h  # + pooler
    if c.embedding_size:
        total += 2 * tokens * c.embedding_size * h
    if entities and c.entity_emb_size != h:
        total += 2 * batch * entities * c.entity_emb_size * h
    if mode == "train":
        masked = batch * max(1, int(round(MASK_RATE * seq)))
        total += 2 * masked * (h * c.embed_dim + c.embed_dim * c.vocab_size)
        if entities:
            masked = batch * max(1, int(round(MASK_RATE * entities)))
            total += 2 * masked * (h * c.entity_emb_size + c.entity_emb_size * c.entity_vocab_size)
        total *= 3
    return total


def gemm_calls(tokens):
    """The matmul ceiling's two probes at `tokens` rows: (MindSpore call, torch call, FLOPs).

    float32 GEMMs at the BERT-base layer shapes (QKV, attention out, FFN up, FFN down), in
    one MindSpore jit graph with distinct weights, so nothing is common-subexpression-
    eliminated; torch's at the same shapes is reported beside it for reference.
    """
    import mindspore as ms
    import numpy as np
    import torch
    from mindspore import ops
    shapes = [(768, 2304), (768, 768), (768, 3072), (3072, 768)]
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((tokens, k), dtype=np.float32) for k, _ in shapes]
    ws = [rng.standard_normal((k, n), dtype=np.float32) * 0.02 for k, n in shapes]
    mx, mw = [ms.Tensor(x) for x in xs], [ms.Tensor(w) for w in ws]
    tx, tw = [torch.from_numpy(x) for x in xs], [torch.from_numpy(w) for w in ws]

    @ms.jit
    def gemms(x0, x1, x2, x3, w0, w1, w2, w3):
        return ops.matmul(x0, w0), ops.matmul(x1, w1), ops.matmul(x2, w2), ops.matmul(x3, w3)

    def ms_call():
        return gemms(*mx, *mw)[3].asnumpy()  # outputs are ready together

    def torch_call():
        return [x @ w for x, w in zip(tx, tw)]

    return ms_call, torch_call, sum(2 * tokens * k * n for k, n in shapes)


SETTLE_S = 0.3
GEMM_CALLS = 5


def cpu_busy_s():
    """Busy CPU seconds of the whole machine so far (all processes), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn, iters):
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def fastest_call(fn, calls):
    """The fastest of `calls` back-to-back calls: what the machine can do at best."""
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# --------------------------------------------------------------------------- memory

def memory_worker(args):
    """Subprocess body: build one side, run a few steps, print peak RSS as JSON."""
    row, mode, which = args.worker.split(":")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    init_frameworks(args)
    # frameworks imported: a baseline everything else is measured above
    import mindspore  # noqa: F401
    import torch  # noqa: F401
    imported = current_rss_kb()
    side = build_side(args, row, mode, which)
    for _ in range(3):
        side.call()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent
    peak = proc_status_kb("VmHWM")
    print(json.dumps(dict(start_kb=base, imported_kb=imported, peak_kb=peak)))


def proc_status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def current_rss_kb():
    return proc_status_kb("VmRSS")


def child_result(args, flag, value):
    """Run this script with the same settings and `flag value`; its last JSON line, or None."""
    cmd = [sys.executable, os.path.abspath(__file__), flag, value,
           "--threads", str(args.threads), "--ms-threads", str(args.ms_threads),
           "--jit-level", args.jit_level, "--dropout", str(args.dropout),
           "--repeats", str(args.repeats), "--iters", str(args.iters),
           "--warmup", str(args.warmup)]
    for item in args.context:
        cmd += ["--context", item]
    if args.variant:
        cmd += ["--variant", args.variant]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        print(f"{flag} {value} failed (exit {proc.returncode}; its stderr is above)",
              file=sys.stderr)
        return None
    return json.loads(lines[-1])


def measure_memory(args, row, mode, which):
    info = child_result(args, "--worker", f"{row}:{mode}:{which}")
    if info is None:
        return None
    return dict(peak_mb=info["peak_kb"] / 1024,
                above_import_mb=(info["peak_kb"] - info["imported_kb"]) / 1024)


# --------------------------------------------------------------------------- main

def run_pair(args, row, mode):
    """Compile/warm both sides, then time them interleaved; returns the row's record."""
    yaml_name, family, batch, seq, head_mode = ROWS[row]
    tokens = batch * seq
    sides = {}
    compile_s = {}
    for which in ("ours", "peer"):
        side = build_side(args, row, mode, which)
        start = time.perf_counter()
        side.call()  # ours: graph compilation happens here
        compile_s[which] = time.perf_counter() - start
        for _ in range(args.warmup):
            side.call()
        sides[which] = side
    # the matmul ceiling is timed between the two sides in every repeat, so a row's MFU
    # divides by a ceiling measured under the same machine conditions
    gemm_ms, gemm_torch, gemm_flops = gemm_calls(tokens)
    for _ in range(2):
        gemm_ms(), gemm_torch()
    # single GEMM calls of one process swing between ~175 and ~375 GFLOP/s here (as if one
    # of the two threads were sometimes idle), so each repeat keeps the fastest of 5 calls
    calls = {"ours": (timed, sides["ours"].call, args.iters),
             "peer": (timed, sides["peer"].call, args.iters),
             "gemm_ms": (fastest_call, gemm_ms, GEMM_CALLS),
             "gemm_torch": (fastest_call, gemm_torch, GEMM_CALLS)}
    times = {k: [] for k in calls}
    busy_before, own_before = cpu_busy_s(), own_cpu_s()
    wall_before = time.perf_counter()
    for rep in range(args.repeats):
        order = ("ours", "gemm_ms", "peer", "gemm_torch") if rep % 2 == 0 else \
            ("peer", "gemm_torch", "ours", "gemm_ms")
        for which in order:
            time.sleep(SETTLE_S)  # let the other side's spinning worker threads go idle
            timer, call, iters = calls[which]
            times[which].append(timer(call, iters))
    wall = time.perf_counter() - wall_before
    other = (cpu_busy_s() - busy_before) - (own_cpu_s() - own_before)
    contention = max(0.0, other) / (wall * (os.cpu_count() or 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    flops = model_flops(row, mode)
    rec = dict(row=row, mode=mode, family=family, batch=batch, seq=seq, tokens=tokens,
               ours_desc=sides["ours"].describe, peer_desc=sides["peer"].describe,
               ours_s=med["ours"], peer_s=med["peer"],
               ours_tok_s=tokens / med["ours"], peer_tok_s=tokens / med["peer"],
               ratio=med["peer"] / med["ours"],
               # best-of-repeats: less sensitive to other processes on a shared machine
               ours_best_tok_s=tokens / min(times["ours"]),
               peer_best_tok_s=tokens / min(times["peer"]),
               ratio_best=min(times["peer"]) / min(times["ours"]),
               ours_times=times["ours"], peer_times=times["peer"],
               first_call_s=compile_s, other_processes_cpu_share=contention,
               model_gflop=flops / 1e9,
               ours_gflops=flops / med["ours"] / 1e9, peer_gflops=flops / med["peer"] / 1e9,
               ceiling=dict(ms_gflops=gemm_flops / med["gemm_ms"] / 1e9,
                            ms_gflops_best=gemm_flops / min(times["gemm_ms"]) / 1e9,
                            torch_gflops=gemm_flops / med["gemm_torch"] / 1e9))
    apply_ceilings([rec])
    del sides
    return rec


def apply_ceilings(rows):
    """Each row's MFU against the run's ceiling at its token count: the fastest GEMM probe of
    all the run's rows with that many tokens (every probe times the same four shapes).

    The fastest repeat, not the median: a short probe right after a pause is slowed by
    waking threads far more than a model step is, and the ceiling is what the machine can
    do. One ceiling for the run, not each row's own: the same probe read 375 to 430 GFLOP/s
    from one row's process to the next in one run (2026-12-01), and 380-410 within one
    process, so per-row ceilings moved MFUs by up to 14 points between rows doing equal
    work. row_mfu keeps the MFU against the row's own probe."""
    best = {}
    for r in rows:
        if "ceiling" in r:
            best[r["tokens"]] = max(best.get(r["tokens"], 0.0), r["ceiling"]["ms_gflops_best"])
    for r in rows:
        if "ceiling" in r:
            r["ceiling"]["run_best"] = best[r["tokens"]]
            r["ours_mfu"] = r["ours_gflops"] / best[r["tokens"]]
            r["peer_mfu"] = r["peer_gflops"] / best[r["tokens"]]
            r["row_mfu"] = dict(ours=r["ours_gflops"] / r["ceiling"]["ms_gflops_best"],
                                peer=r["peer_gflops"] / r["ceiling"]["ms_gflops_best"])


def markdown(result):
    lines = []
    env = result["env"]
    lines.append(f"Command: `{result['command']}`  ")
    lines.append(f"Machine: {env['cpu']}, {env['threads']} threads; mindspore "
                 f"{env['mindspore']}, torch {env['torch']}, transformers "
                 f"{env['transformers']}; jit_level={env['jit_level']}"
                 + (f", context {env['context']}" if env['context'] else "")
                 + (f", variant {env['variant']}" if env['variant'] else "")
                 + f"; dropout {env.get('dropout', 0.0)} on both sides  ")
    deployed = [r for r in result["rows"] if r["mode"] == "deploy"]
    paired = [r for r in result["rows"] if r["mode"] != "deploy"]
    if paired:
        lines += paired_markdown(paired)
    if deployed:
        lines += deploy_markdown(deployed)
    return "\n".join(lines) + "\n"


def paired_markdown(paired):
    """The ours-vs-peer table of the inference and training rows, and what each side runs."""
    lines = []
    lines.append("")
    lines.append("| row | mode | ours tok/s | peer tok/s | ours/peer | ours MFU | peer MFU "
                 "| run ceiling GFLOP/s | row's probe GFLOP/s: best (median; torch) "
                 "| best-of ratio | ours peak MB "
                 "| peer peak MB "
                 "| ours compile s | other CPU |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in paired:
        mem = r.get("memory") or {}
        o, p = mem.get("ours"), mem.get("peer")
        fmt_mem = (lambda m: f"{m['peak_mb']:.0f} (+{m['above_import_mb']:.0f})"
                   if m else "-")
        lines.append(f"| {r['row']} | {r['mode']} | {r['ours_tok_s']:.0f} | "
                     f"{r['peer_tok_s']:.0f} | **{r['ratio']:.2f}** | {r['ours_mfu']:.0%} | "
                     f"{r['peer_mfu']:.0%} | {r['ceiling']['run_best']:.0f} | "
                     f"{r['ceiling']['ms_gflops_best']:.0f} "
                     f"({r['ceiling']['ms_gflops']:.0f}; {r['ceiling']['torch_gflops']:.0f}) | "
                     f"{r['ratio_best']:.2f} | {fmt_mem(o)} | {fmt_mem(p)} | "
                     f"{r['first_call_s']['ours']:.1f} | {r['other_processes_cpu_share']:.0%} |")
    lines.append("")
    lines.append("What each side runs:")
    seen = set()
    for r in paired:
        key = (r["row"], r["mode"])
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"- {r['row']} {r['mode']}: ours = {r['ours_desc']}; "
                     f"peer = {r['peer_desc']}")
    lines.append("")
    lines.append("MFU = model FLOPs (encoder matmuls, + masked-position MLM head x3 for "
                 "training) / median time / run ceiling. Each row's probe: float32 GEMM "
                 "GFLOP/s through MindSpore at the four layer shapes and the row's token "
                 "count, timed between the two sides in every repeat (fastest of 5 calls), "
                 "fastest repeat (median repeat and torch's GEMM rate in brackets); the run "
                 "ceiling is the fastest probe of the run's rows at that token count. "
                 "Peak MB = peak RSS of a fresh process running only that side "
                 "(in brackets: above the RSS after importing both frameworks). Other CPU = share of "
                 "the machine's CPU time used by other processes while the row was timed "
                 "(a noisy-neighbour indicator; high values make the row less reliable).")
    return lines


def main(argv=None):
    args = parse_args(argv)
    set_thread_env(args.threads)
    sys.path.insert(0, ROOT)
    if args.worker:
        memory_worker(args)
        return
    if args.pair:
        init_frameworks(args)
        row, mode = args.pair.split(":")
        record = run_deploy(args, row) if mode == "deploy" else run_pair(args, row, mode)
        print(json.dumps(record), flush=True)
        return
    rows, failed = [], []
    for row in args.rows:
        for mode in args.modes:
            if ROWS[row][4] == "all" and mode == "inference":
                continue  # the head is not part of inference: same as the masked row
            if (mode == "deploy" and row not in DEPLOY_ROWS) or (mode != "deploy" and row in DEPLOY_ONLY):
                continue
            print(f"{row} {mode} ...", flush=True)
            rec = child_result(args, "--pair", f"{row}:{mode}")
            if rec is None:
                failed.append(f"{row} {mode}")
                continue
            if mode == "deploy":
                print("  " + ", ".join(f"{name} {side['latency_ms']:.1f} ms ({side['tok_s']:.0f} tok/s)"
                                       for name, side in rec["sides"].items()), flush=True)
                rows.append(rec)
                write_results(args, argv, rows)
                continue
            if not args.no_memory:
                rec["memory"] = {w: measure_memory(args, row, mode, w) for w in ("ours", "peer")}
            print(f"  ours {rec['ours_tok_s']:.0f} tok/s, peer {rec['peer_tok_s']:.0f} tok/s, "
                  f"ratio {rec['ratio']:.2f}, ours MFU {rec['row_mfu']['ours']:.0%} (its own "
                  f"probe {rec['ceiling']['ms_gflops_best']:.0f} GFLOP/s), best: ours "
                  f"{rec['ours_best_tok_s']:.0f} peer {rec['peer_best_tok_s']:.0f} ratio "
                  f"{rec['ratio_best']:.2f}, other CPU {rec['other_processes_cpu_share']:.0%}",
                  flush=True)
            rows.append(rec)
            write_results(args, argv, rows)
    write_results(args, argv, rows, show=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (not in the results)")


def write_results(args, argv, rows, show=False):
    """Write model.json and model.md (after every row, so a crash keeps what was measured)."""
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    result = dict(command="python " + " ".join([os.path.relpath(__file__, ROOT)]
                                                + (argv if argv is not None else sys.argv[1:])),
                  env=dict(cpu=cpu, cores=os.cpu_count(), threads=args.threads,
                           mindspore=version("mindspore"), torch=version("torch"),
                           transformers=version("transformers"), jit_level=args.jit_level,
                           context=args.context, variant=args.variant, dropout=args.dropout,
                           repeats=args.repeats, iters=args.iters,
                           time=time.strftime("%Y-%m-%d %H:%M:%S")),
                  rows=rows)
    apply_ceilings(rows)
    from src.files import write_text_atomic
    write_text_atomic(args.out + ".json", json.dumps(result, indent=1))
    write_text_atomic(args.out + ".md", markdown(result))
    if show:
        print(markdown(result))


if __name__ == "__main__":
    main()
