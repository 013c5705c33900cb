"""Data builders side by side: SQuAD training features vs HF run_qa.py's, pretraining MindRecord vs raw tokenization.

Section `squad` generates a SQuAD-format file (English-like made-up words, contexts of a few hundred
words, so most need several windows at max_seq_length 384), trains a WordPiece vocabulary on it with
`create_data.py vocab`'s code, and times, interleaved and repeated (median):
  - ours: `build_squad_features(examples, tokenizer, options, is_training=True)` (numpy arrays out);
  - HF: transformers' BertTokenizerFast over the same vocab.txt, called as run_qa.py's
    prepare_train_features (truncation="only_second", stride, return_overflowing_tokens,
    return_offsets_mapping, padding="max_length", then its Python start/end loop), in batches of 1000
    as datasets.map does (Python lists out; the Arrow write that follows in run_qa is not timed).
Reading the JSON is not timed on either side. One row per --questions_per_context value (SQuAD has
about 5 per paragraph; our builder tokenizes each distinct context once, so 1 is our worst case).
Beside them, the same builder with LUKE's entity linking (`entities=`, as `create_data.py squad
--mention_db` runs it) on the same file: the article's --anchors anchor texts (1-3 word n-grams of the
contexts, led by a word outside the 300 most frequent) in a mention DB written with MentionTables,
each linked to its own entity of the vocabulary; target: at least 0.5x the plain builder's examples/s.

Section `pretrain` times the tokenizer's own batch calls (encode_batch, and encode_batch_fast, which
skips offsets; the faster is the reference) and the whole pretraining builder (read, tokenize, pair,
mask, write MindRecord) with --workers N on the same generated corpus (benchmarks/bench_pretrain_data.py
also measures its memory as the corpus grows).

    .venv/bin/python benchmarks/bench_data.py                   # both sections
    .venv/bin/python benchmarks/bench_data.py --section squad --examples 500 --repeats 1   # quicker
"""
import argparse
import collections
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from src.data.entities.linking import EntityLinker, EntityOptions, article_title  # noqa: E402
from src.data.entities.mention_db import MentionDB, MentionOptions, MentionTables  # noqa: E402
from src.data.entities.vocab import load_entity_vocab  # noqa: E402
from src.data.tasks.squad import SquadOptions, read_squad  # noqa: E402
from src.data.tasks.squad_entities import SquadEntities  # noqa: E402
from src.data.tasks.squad_features import build_squad_features  # noqa: E402
from src.data.tokenization import load_tokenizer  # noqa: E402
from src.data.vocab import train_vocab  # noqa: E402

SECTIONS = ("all", "squad", "pretrain")
_SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "quin", "zel", "bra", "dun", "e", "ost", "pha", "ri", "sul", "ti"]
HF_BATCH = 1000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", default="all", choices=SECTIONS, help="which builder to benchmark")
    parser.add_argument("--throughput_mb", type=int, default=50, help="pretrain: generated corpus size (MB)")
    parser.add_argument("--workers", type=int, default=2, help="pretrain: builder processes")
    parser.add_argument("--examples", type=int, default=2000, help="questions per generated file")
    parser.add_argument("--questions_per_context", default="5,1", help="comma list; one row each")
    parser.add_argument("--context_words", default="200,400", help="min,max words per context")
    parser.add_argument("--max_seq_length", type=int, default=384)
    parser.add_argument("--doc_stride", type=int, default=128,
                        help="ours: step between windows (BERT); HF: overlap between windows (run_qa)")
    parser.add_argument("--max_query_length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed runs per side (median)")
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--anchors", type=int, default=1000, help="squad: anchor texts of the linked article")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "bench_data"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data"),
                        help="output path without extension (.json and .md are written)")
    return parser.parse_args(argv)


def generate_squad(path: Path, examples: int, per_context: int, words: tuple[int, int], seed: int = 0) -> Path:
    """Write a SQuAD v1.1-format file: contexts of made-up sentences, questions and word-aligned answers."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(20_000)]
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocabulary))))
    paragraphs = []
    for start in range(0, examples, per_context):
        picked = rng.choices(vocabulary, cum_weights=cumulative, k=rng.randint(*words))
        context = " ".join(word + (" ." if rng.random() < 0.07 else "") for word in picked) + " ."
        qas = [_question(context, rng, f"q{start + n}") for n in range(min(per_context, examples - start))]
        paragraphs.append({"context": context, "qas": qas})
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "bench", "paragraphs": paragraphs}]}),
                    encoding="utf-8")
    return path


def _question(context: str, rng: random.Random, qid: str) -> dict:
    """A question of 6-15 context words and a 1-4 word answer at a random place in the context."""
    words = context.split(" ")
    first = rng.randrange(len(words) - 4)
    answer = " ".join(words[first:first + rng.randint(1, 4)])
    start = len(" ".join(words[:first])) + (1 if first else 0)
    question = " ".join(rng.choices(words, k=rng.randint(6, 15))) + " ?"
    return {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": start}]}


def hf_prepare_train_features(tokenizer, examples: dict, max_seq_length: int, doc_stride: int) -> dict:
    """transformers' examples/pytorch/question-answering/run_qa.py prepare_train_features (pad_on_right)."""
    examples["question"] = [q.lstrip() for q in examples["question"]]
    tokenized = tokenizer(examples["question"], examples["context"], truncation="only_second",
                          max_length=max_seq_length, stride=doc_stride, return_overflowing_tokens=True,
                          return_offsets_mapping=True, padding="max_length")
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    offset_mapping = tokenized.pop("offset_mapping")
    tokenized["start_positions"], tokenized["end_positions"] = [], []
    for i, offsets in enumerate(offset_mapping):
        input_ids = tokenized["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        sequence_ids = tokenized.sequence_ids(i)
        answers = examples["answers"][sample_mapping[i]]
        if len(answers["answer_start"]) == 0:
            tokenized["start_positions"].append(cls_index)
            tokenized["end_positions"].append(cls_index)
            continue
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        token_start_index = 0
        while sequence_ids[token_start_index] != 1:
            token_start_index += 1
        token_end_index = len(input_ids) - 1
        while sequence_ids[token_end_index] != 1:
            token_end_index -= 1
        if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
            tokenized["start_positions"].append(cls_index)
            tokenized["end_positions"].append(cls_index)
            continue
        while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
            token_start_index += 1
        tokenized["start_positions"].append(token_start_index - 1)
        while offsets[token_end_index][1] >= end_char:
            token_end_index -= 1
        tokenized["end_positions"].append(token_end_index + 1)
    return tokenized


def hf_side(model_dir: Path, examples: list, args: argparse.Namespace):
    """A call running HF's approach over all examples in datasets.map-sized batches; returns the batches' outputs."""
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast.from_pretrained(str(model_dir))
    columns = {"question": [e.question for e in examples], "context": [e.context for e in examples],
               "answers": [{"text": [t for t, _ in e.answers], "answer_start": [s for _, s in e.answers]}
                           for e in examples]}

    def call() -> list:
        return [hf_prepare_train_features(tokenizer, {name: values[start:start + HF_BATCH]
                                                      for name, values in columns.items()},
                                          args.max_seq_length, args.doc_stride)
                for start in range(0, len(examples), HF_BATCH)]
    return call


def ours_side(model_dir: Path, examples: list, args: argparse.Namespace):
    """A call building our training features over all examples."""
    tokenizer = load_tokenizer(model_dir)
    options = SquadOptions(args.max_seq_length, args.doc_stride, args.max_query_length)
    return lambda: build_squad_features(examples, tokenizer, options, is_training=True)


def mention_world(workdir: Path, model_dir: Path, examples: list, anchors: int, seed: int = 0) -> tuple[Path, Path]:
    """A mention DB of `anchors` texts of the examples' contexts for their article, and a copy of the model
    directory with an entity vocabulary holding one entity per text."""
    rng = random.Random(seed)
    words = " ".join(dict.fromkeys(example.context for example in examples)).split(" ")
    rank = {word: index for index, (word, _) in enumerate(collections.Counter(words).most_common())}
    texts: set[str] = set()
    while len(texts) < anchors:
        first = rng.randrange(len(words) - 3)
        text = " ".join(words[first:first + rng.randint(1, 3)])
        if rank[words[first]] >= 300 and "." not in text:
            texts.add(text)
    tables = MentionTables()
    for text in sorted(texts):
        tables.add_link(article_title(examples[0].title), text, f"Entity {text}")
    tables.doc_counts = np.ones(len(tables.texts), dtype=np.int64)
    folder = workdir / f"mentions_{anchors}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    tables.write(str(folder), MentionOptions(min_link_prob=0.0), {"language": "en", "source": {"kind": "bench"}},
                 collections.Counter())
    luke_dir = workdir / "wordpiece_entities"
    shutil.copytree(model_dir, luke_dir, dirs_exist_ok=True)
    vocab = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, **{f"Entity {text}": 3 + i for i, text in enumerate(sorted(texts))}}
    (luke_dir / "entity_vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    return folder, luke_dir


def linked_side(mention_db: Path, luke_dir: Path, examples: list, args: argparse.Namespace):
    """A call building our training features with entity linking over all examples (fresh linker each call)."""
    tokenizer = load_tokenizer(luke_dir)
    options = SquadOptions(args.max_seq_length, args.doc_stride, args.max_query_length)

    def call():
        linker = EntityLinker(MentionDB(str(mention_db)), load_entity_vocab(str(luke_dir)), EntityOptions())
        return build_squad_features(examples, tokenizer, options, is_training=True, entities=SquadEntities(linker))
    return call


def squad_row(args: argparse.Namespace, workdir: Path, model_dir: Path, per_context: int) -> dict:
    """Time the sides on one generated file, interleaved; medians and features made."""
    path = generate_squad(workdir / f"squad_{args.examples}_{per_context}.json", args.examples, per_context,
                          tuple(int(n) for n in args.context_words.split(",")))
    examples, _ = read_squad(path)
    mention_db, luke_dir = mention_world(workdir, model_dir, examples, args.anchors)
    sides = {"ours": ours_side(model_dir, examples, args), "hf": hf_side(model_dir, examples, args),
             "linked": linked_side(mention_db, luke_dir, examples, args)}
    ours, hf, linked = sides["ours"](), sides["hf"](), sides["linked"]()  # warm-up, and the outputs to compare
    first = {name: hf[0][name][0] for name in ("input_ids", "token_type_ids", "attention_mask",
                                                "start_positions", "end_positions")}
    same_first = first == {"input_ids": ours.input_ids[0].tolist(), "token_type_ids": ours.segment_ids[0].tolist(),
                           "attention_mask": ours.input_mask[0].tolist(),
                           "start_positions": int(ours.start_positions[0]), "end_positions": int(ours.end_positions[0])}
    times: dict[str, list[float]] = {"ours": [], "hf": [], "linked": []}
    for repeat in range(args.repeats):
        for name in (("ours", "hf", "linked") if repeat % 2 == 0 else ("linked", "hf", "ours")):
            started = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    return {"questions_per_context": per_context, "examples": len(examples),
            "contexts": len({example.context for example in examples}),
            "ours_features": len(ours), "hf_features": sum(len(batch["input_ids"]) for batch in hf),
            "first_window_identical": same_first,
            "ours_s": median["ours"], "hf_s": median["hf"],
            "ours_examples_per_s": len(examples) / median["ours"], "hf_examples_per_s": len(examples) / median["hf"],
            "ratio": median["hf"] / median["ours"], "ratio_best": min(times["hf"]) / min(times["ours"]),
            "linked_examples_per_s": len(examples) / median["linked"],
            "linked_ratio": median["ours"] / median["linked"],
            "linked_ratio_best": min(times["ours"]) / min(times["linked"]),
            "linked_same_windows": bool(np.array_equal(linked.input_ids, ours.input_ids)),
            "entities_per_window": float(linked.entity_attention_mask.sum(axis=1).mean()),
            "ours_times": times["ours"], "hf_times": times["hf"], "linked_times": times["linked"]}


def markdown(result: dict) -> str:
    """The results as markdown: command and machine, then one section per benchmarked builder."""
    env = result["env"]
    lines = [f"Command: `{result['command']}`  ",
             f"Machine: {env['cpu']}, {env['cores']} cores; tokenizers {env['tokenizers']}, "
             f"transformers {env['transformers']}, numpy {env['numpy']}  "]
    if "squad" in result:
        lines += squad_markdown(result["squad"], result["settings"])
    if "pretrain" in result:
        lines += pretrain_markdown(result["pretrain"], result["settings"])
    return "\n".join(lines) + "\n"


def pretrain_markdown(row: dict, settings: dict) -> list[str]:
    """The pretraining section: raw tokenization speeds, the builder's, and the ratio to the faster raw."""
    return ["", "## Pretraining MindRecord vs raw tokenization", "",
            f"Settings: {settings['throughput_mb']} MB generated corpus ({row['tokens']:,} tokens), WordPiece "
            f"vocabulary of 8000, max_seq_length 128, NSP, static masking, dupe_factor 1; best of "
            f"{settings['repeats']} interleaved runs", "",
            "| raw encode_batch tok/s | raw encode_batch_fast tok/s | builder --workers "
            f"{row['workers']} tok/s | builder / faster raw | documents/s |",
            "|---:|---:|---:|---:|---:|",
            f"| {row['raw_encode_batch']:,.0f} | {row['raw_encode_batch_fast']:,.0f} | {row['builder']:,.0f} | "
            f"**{row['ratio']:.0%}** | {row['documents_per_s']:,.0f} |", "",
            "raw = the tokenizer's own batch call over every sentence of the corpus, already in memory, on all "
            "cores; builder = `create_data.py pretrain` from the file to finished MindRecord shards and "
            "manifest in a fresh process (start-up and MindSpore import included)."]


def pretrain_section(args: argparse.Namespace, workdir: Path) -> dict:
    """Raw tokenization vs the pretraining builder on a generated corpus (bench_pretrain_data's code)."""
    import bench_pretrain_data as pretrain

    sample = pretrain.generate_corpus(workdir / "corpus_5mb.txt", 5)
    model_dir = workdir / "pretrain_wordpiece"
    if not (model_dir / "vocab.txt").is_file():
        train_vocab([str(sample)], str(model_dir), "wordpiece", 8000)
    corpus = pretrain.generate_corpus(workdir / f"corpus_{args.throughput_mb}mb.txt", args.throughput_mb)
    settings = argparse.Namespace(workdir=str(workdir), workers=args.workers, dupe_factor=1, max_seq_length=128,
                                  repeats=args.repeats)
    print(f"pretrain, {args.throughput_mb} MB ...", flush=True)
    row = pretrain.throughput(settings, model_dir, corpus)
    print(f"  builder {row['builder']:,.0f} tokens/s = {row['ratio']:.0%} of raw", flush=True)
    return row


def squad_markdown(rows: list[dict], settings: dict) -> list[str]:
    """The SQuAD section: settings, the table, and what each side runs."""
    lines = ["", "## SQuAD training features", "",
             f"Settings: max_seq_length {settings['max_seq_length']}, doc_stride {settings['doc_stride']}, "
             f"max_query_length {settings['max_query_length']}, contexts of {settings['context_words']} words, "
             f"WordPiece vocabulary of {settings['vocab_size']}; median of {settings['repeats']} interleaved runs",
             "",
             "| questions per context | examples | ours examples/s | HF examples/s | ours/HF | best-of ratio "
             "| ours features | HF features | first window identical |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row['questions_per_context']} | {row['examples']} | {row['ours_examples_per_s']:,.0f} | "
                     f"{row['hf_examples_per_s']:,.0f} | **{row['ratio']:.2f}** | {row['ratio_best']:.2f} | "
                     f"{row['ours_features']} | {row['hf_features']} | "
                     f"{'yes' if row['first_window_identical'] else 'NO'} |")
    lines += ["", f"Entity-linked (LUKE) on the same files, {settings['anchors']} anchor texts in the article:", "",
              "| questions per context | ours examples/s | entity-linked examples/s | linked/ours | best-of ratio "
              "| entities per window | same windows |", "|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row['questions_per_context']} | {row['ours_examples_per_s']:,.0f} | "
                     f"{row['linked_examples_per_s']:,.0f} | **{row['linked_ratio']:.2f}** | "
                     f"{row['linked_ratio_best']:.2f} | {row['entities_per_window']:.1f} | "
                     f"{'yes' if row['linked_same_windows'] else 'NO'} |")
    return lines + [
        "", "ours = `build_squad_features(..., is_training=True)`: questions and each distinct context "
        "tokenized once in one batched call, windows gathered with numpy, numpy int32 arrays out. "
        "HF = run_qa.py's prepare_train_features with BertTokenizerFast over the same vocab.txt, batches "
        f"of {HF_BATCH} (datasets.map's default), Python lists out. ours/HF = HF median time / ours; "
        "best-of ratio = the same with each side's fastest run (less sensitive to other load on a shared "
        "machine). doc_stride means different things: ours (BERT's) is the step between window starts, HF's "
        "is the overlap, so at the same number ours makes more windows (the feature columns), i.e. does "
        "more work per example. First window identical: the first feature's ids, type ids, mask and "
        "start/end positions are the same on both sides (a check that both tokenize alike)."]


def environment() -> dict:
    """Versions and machine, for the results header."""
    import numpy
    import tokenizers
    import transformers

    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "tokenizers": tokenizers.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__,
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def squad_section(args: argparse.Namespace, workdir: Path) -> list[dict]:
    """A WordPiece vocabulary trained on generated contexts, then one timed row per --questions_per_context."""
    sample = generate_squad(workdir / "squad_vocab_sample.json", 5000, 5, (200, 400), seed=1)
    corpus = workdir / "squad_corpus.txt"
    paragraphs = json.loads(sample.read_text(encoding="utf-8"))["data"][0]["paragraphs"]
    corpus.write_text("\n".join(paragraph["context"] for paragraph in paragraphs), encoding="utf-8")
    model_dir = workdir / "wordpiece"
    train_vocab([str(corpus)], str(model_dir), "wordpiece", args.vocab_size, overwrite=True)
    rows = []
    for per_context in [int(n) for n in args.questions_per_context.split(",") if n]:
        print(f"squad, {per_context} questions per context ...", flush=True)
        row = squad_row(args, workdir, model_dir, per_context)
        print(f"  ours {row['ours_examples_per_s']:,.0f} examples/s ({row['ours_features']} features), "
              f"HF {row['hf_examples_per_s']:,.0f} examples/s ({row['hf_features']} features), "
              f"ratio {row['ratio']:.2f}", flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    result = {"command": "python " + " ".join([os.path.relpath(__file__, ROOT)] + (argv or sys.argv[1:])),
              "env": environment(), "settings": {key: value for key, value in vars(args).items()
                                                 if key not in ("workdir", "out", "section")}}
    if args.section in ("all", "squad"):
        result["squad"] = squad_section(args, workdir)
    if args.section in ("all", "pretrain"):
        result["pretrain"] = pretrain_section(args, workdir)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    Path(args.out + ".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
