"""Pretraining data builder: throughput against raw batch tokenization, and peak memory as the corpus grows.

One run generates English-like corpora (Zipf-distributed made-up words, BERT's one-sentence-per-line
format), trains a WordPiece vocabulary on a slice with `create_data.py vocab`'s code, then:
  - throughput: tokens/s of the tokenizer's own `encode_batch` over every sentence (all cores), and
    tokens/s of the whole builder (read, tokenize, segment, mask, write MindRecord) with --workers N,
    on the same text, interleaved and repeated (best of each: the machine may be shared);
  - memory: the builder on a small and a large corpus, each in a fresh subprocess; peak RSS of the
    main process and of the largest worker.

    .venv/bin/python benchmarks/bench_pretrain_data.py                      # 50 MB throughput, 50/500 MB memory
    .venv/bin/python benchmarks/bench_pretrain_data.py --memory_mb 10,50    # quicker
"""
import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.data.corpus import list_files, read_documents  # noqa: E402
from src.data.pretraining.instances import PretrainOptions  # noqa: E402
from src.data.pretraining.records import create_pretraining_data  # noqa: E402
from src.data.tokenization import load_tokenizer  # noqa: E402
from src.data.vocab import train_vocab  # noqa: E402

_SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "quin", "zel", "bra", "dun", "e", "ost", "pha", "ri", "sul", "ti"]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "bench_pretrain_data"))
    parser.add_argument("--throughput_mb", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved raw/builder runs; best of each")
    parser.add_argument("--memory_mb", default="50,500", help="comma list of corpus sizes for the memory rows")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dupe_factor", type=int, default=1)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--run_builder", help=argparse.SUPPRESS)
    return parser.parse_args()


def generate_corpus(path: Path, megabytes: int, seed: int = 0) -> Path:
    """Write (once) a corpus of about `megabytes` MB: documents of 2-30 sentences of 5-30 words."""
    if path.is_file():
        return path
    rng = random.Random(seed)
    words = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(20_000)]
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(words))))
    target, written = megabytes * 1_000_000, 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        while written < target:
            sizes = [rng.randint(5, 30) for _ in range(rng.randint(2, 30))]
            picks = iter(rng.choices(words, cum_weights=cumulative, k=sum(sizes)))
            text = "".join(" ".join(next(picks) for _ in range(size)) + " .\n" for size in sizes) + "\n"
            out.write(text)
            written += len(text)
    tmp.replace(path)
    return path


def raw_tokens_per_second(model_dir: Path, corpus: Path, fast: bool = False) -> tuple[float, int]:
    """Tokens/s of the tokenizer's own parallel encode_batch (or encode_batch_fast: no offsets) over every
    sentence (reading excluded)."""
    tokenizer = load_tokenizer(model_dir)
    encode = tokenizer.backend.encode_batch_fast if fast else tokenizer.backend.encode_batch
    sentences = [s for doc in read_documents(list_files([str(corpus)]), Counter()) for s in doc]
    started, tokens = time.perf_counter(), 0
    for start in range(0, len(sentences), 20_000):
        tokens += sum(len(e.ids) for e in encode(sentences[start:start + 20_000], add_special_tokens=False))
    return tokens / (time.perf_counter() - started), tokens


def throughput(args: argparse.Namespace, model_dir: Path, corpus: Path) -> dict:
    """Raw tokenization (both tokenizers calls, the faster is the reference) and the builder, interleaved
    args.repeats times; best of each."""
    plain, fast, builds = [], [], []
    for _ in range(args.repeats):
        plain.append(raw_tokens_per_second(model_dir, corpus)[0])
        fast.append(raw_tokens_per_second(model_dir, corpus, fast=True)[0])
        builds.append(builder_row(args, model_dir, corpus))
    built = min(builds, key=lambda row: row["seconds"])
    ours = built["counts"]["tokens"] / built["seconds"]
    raw = max(plain + fast)
    return {"raw_encode_batch": max(plain), "raw_encode_batch_fast": max(fast), "builder": ours,
            "ratio": ours / raw, "tokens": built["counts"]["tokens"],
            "documents_per_s": built["counts"]["documents"] / built["seconds"], "workers": args.workers}


def run_builder(spec: str) -> None:
    """(In a subprocess) build one dataset and print its counts, time and peak RSS as JSON."""
    settings = json.loads(spec)
    options = PretrainOptions(max_seq_length=settings["max_seq_length"], dupe_factor=settings["dupe_factor"])
    started = time.perf_counter()
    manifest = create_pretraining_data([settings["corpus"]], settings["model_dir"], settings["output"], options,
                                       workers=settings["workers"], overwrite=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "counts": manifest["counts"],
                      "main_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def builder_row(args: argparse.Namespace, model_dir: Path, corpus: Path) -> dict:
    """Run the builder on a corpus in a fresh subprocess and return its JSON report."""
    spec = json.dumps({"corpus": str(corpus), "model_dir": str(model_dir), "output": str(Path(args.workdir) / "out"),
                       "workers": args.workers, "dupe_factor": args.dupe_factor,
                       "max_seq_length": args.max_seq_length})
    done = subprocess.run([sys.executable, __file__, "--run_builder", spec], capture_output=True, text=True,
                          env={**os.environ, "GLOG_v": "3"})
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    if args.run_builder:
        run_builder(args.run_builder)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sample = generate_corpus(workdir / "corpus_5mb.txt", 5)
    model_dir = workdir / "wordpiece"
    if not (model_dir / "vocab.txt").is_file():
        train_vocab([str(sample)], str(model_dir), "wordpiece", 8000)
    corpus = generate_corpus(workdir / f"corpus_{args.throughput_mb}mb.txt", args.throughput_mb)
    row = throughput(args, model_dir, corpus)
    print(f"throughput on {args.throughput_mb} MB ({row['tokens']} tokens, {os.cpu_count()} cores):")
    print(f"  raw encode_batch             {row['raw_encode_batch']:12,.0f} tokens/s")
    print(f"  raw encode_batch_fast        {row['raw_encode_batch_fast']:12,.0f} tokens/s")
    print(f"  builder --workers {args.workers}          {row['builder']:12,.0f} tokens/s  "
          f"({row['ratio']:.0%} of the faster raw; {row['documents_per_s']:,.0f} documents/s, "
          f"dupe_factor {args.dupe_factor})")
    for megabytes in [int(size) for size in args.memory_mb.split(",") if size]:
        row = builder_row(args, model_dir, generate_corpus(workdir / f"corpus_{megabytes}mb.txt", megabytes))
        print(f"memory on {megabytes:4d} MB: main peak {row['main_peak_mb']:7.0f} MB, largest worker "
              f"{row['worker_peak_mb']:7.0f} MB, {row['seconds']:7.1f} s, "
              f"{row['counts']['documents'] / row['seconds']:,.0f} documents/s")


if __name__ == "__main__":
    main()
