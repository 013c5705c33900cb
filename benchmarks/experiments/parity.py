"""Does a variant keep outputs within 1e-4 of the current backbone on the same weights?

    .venv/bin/python benchmarks/experiments/parity.py split_heads [--jit-level O1]
        [--context enable_graph_kernel=True]

BERT-base shape, batch 2 x 128 with a padded tail, pretraining head (MLM logits at masked
positions + NSP) and the backbone's sequence/pooled outputs; also the loss gradient of
one parameter per kind. Prints the max abs differences and PASS/FAIL.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
JIT = {"level": "O0"}
os.environ.setdefault("GLOG_v", "3")


def run(model, inputs):
    import mindspore as ms
    from src.training.losses import pretraining_loss
    ids, mask, types, positions, labels, weights, pair = inputs

    def forward(*xs):
        mlm, nsp = model(xs[0], xs[1], xs[2], xs[3])
        seq, pooled = model.backbone(xs[0], xs[1], xs[2])
        return mlm, nsp, seq, pooled

    def loss_fn(*xs):
        mlm, nsp = model(xs[0], xs[1], xs[2], xs[3])
        return pretraining_loss(mlm, xs[4], xs[5], nsp, xs[6])

    outs = ms.jit(forward, jit_level=JIT["level"])(*inputs)
    grad = ms.jit(ms.value_and_grad(loss_fn, None, model.trainable_params()),
                  jit_level=JIT["level"])
    loss, grads = grad(*inputs)
    names = [p.name for p in model.trainable_params()]
    picked = {n: g.asnumpy() for n, g in zip(names, grads)
              if n.endswith(("layers.0.attention.qkv.weight", "layers.1.output.weight",
                             "word_embeddings.embedding_table"))}
    return [o.asnumpy() for o in outs] + [loss.asnumpy()], picked


def main():
    p = argparse.ArgumentParser()
    p.add_argument("variant", nargs="?", default="")
    p.add_argument("--jit-level", default="")
    p.add_argument("--context", action="append", default=[])
    args = p.parse_args()
    import mindspore as ms
    import numpy as np
    import yaml
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU", runtime_num_threads=2)
    from bench_model import our_config, make_batch
    from src.models import build_model
    config = our_config("bert_base")
    config.num_hidden_layers = 2  # parity does not depend on depth; keeps this quick
    data = make_batch("bert", config.vocab_size, 2, 128, seed=3)
    data["mask"][1, 100:] = 0
    data["ids"][1, 100:] = 0
    keys = ("ids", "mask", "types", "positions", "masked_ids", "weights", "pair")
    inputs = [ms.Tensor(data[k]) for k in keys]
    ms.set_seed(0)
    base = build_model(config, "pretraining")
    base.set_train(True)  # dropout is 0; train mode as in the training step
    want, want_g = run(base, inputs)
    state = {p.name: p.asnumpy() for p in base.get_parameters()}
    if args.variant:
        import variants
        variants.apply(args.variant)
    for item in args.context:
        key, _, value = item.partition("=")
        ms.set_context(**{key: yaml.safe_load(value)})
    if args.jit_level:
        JIT["level"] = args.jit_level
    model = build_model(config, "pretraining")
    model.set_train(True)
    for prm in model.get_parameters():
        prm.set_data(ms.Tensor(state[prm.name]))
    got, got_g = run(model, inputs)
    worst = 0.0
    for name, a, b in zip(("mlm", "nsp", "sequence", "pooled", "loss"), want, got):
        d = float(np.abs(a - b).max())
        worst = max(worst, d)
        print(f"{name:10s} max|diff| {d:.2e}")
    for name in want_g:
        d = float(np.abs(want_g[name] - got_g[name]).max())
        print(f"grad {name} max|diff| {d:.2e}")
        worst = max(worst, d)
    print(("PASS" if worst <= 1e-4 else "FAIL") + f" worst {worst:.2e}")


if __name__ == "__main__":
    main()
