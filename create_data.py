"""Raw data -> MindRecord: pretraining instances, and vocabulary training for pretraining from scratch.

  python create_data.py pretrain --input corpus/ --model_dir models/bert_base --output data/pretrain \
      --max_seq_length 128 --max_predictions_per_seq 20 --dupe_factor 10 --workers 4
  python create_data.py pretrain --input zhwiki/ --model_dir models/ernie --output data/ernie \
      --objective nsp --chinese_wwm --masking dynamic
  python create_data.py vocab --input corpus/ --output models/scratch --type wordpiece --vocab_size 30522
"""
import argparse
import logging
import signal
import sys

from src.errors import run_cli


def _flag(value: str) -> bool:
    """A true/false command-line value."""
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{value!r}: expected true or false")
    return value.lower() == "true"


def _add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every subcommand that reads a raw corpus."""
    parser.add_argument("--input", nargs="+", required=True, help="corpus files or folders (.gz/.bz2 read as is)")
    parser.add_argument("--format", default="auto", choices=["auto", "text", "wiki", "jsonl"],
                        help="corpus format: one sentence per line, WikiExtractor <doc>, or JSON lines with 'text'")
    parser.add_argument("--split_sentences", action="store_true",
                        help="split lines into sentences on English and Chinese sentence punctuation")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def _pretrain_parser(sub: argparse._SubParsersAction) -> None:
    """`pretrain`: corpus -> sharded MindRecord of pretraining instances."""
    from src.data.pretraining import MASKINGS, OBJECTIVES, PretrainOptions

    defaults = PretrainOptions()
    parser = sub.add_parser("pretrain", help="corpus -> pretraining MindRecord shards")
    _add_corpus_arguments(parser)
    parser.add_argument("--model_dir", required=True, help="model directory holding the tokenizer files")
    parser.add_argument("--output", required=True, help="folder to write shards and manifest.json into")
    for name in ("max_seq_length", "max_predictions_per_seq", "random_seed"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    parser.add_argument("--chunk_documents", type=int, default=defaults.chunk_documents,
                        help="documents per unit of work; with random_seed it fixes the output, whatever --workers")
    parser.add_argument("--dupe_factor", type=int, default=None,
                        help=f"passes over the corpus (default {defaults.dupe_factor} for static masking, "
                             "1 for dynamic: the reader masks anew each epoch)")
    for name in ("masked_lm_prob", "short_seq_prob"):
        parser.add_argument(f"--{name}", type=float, default=getattr(defaults, name))
    parser.add_argument("--objective", default=defaults.objective, choices=OBJECTIVES,
                        help="nsp (BERT, NEZHA, ERNIE), sop (ALBERT) or none (RoBERTa FULL-SENTENCES)")
    parser.add_argument("--masking", default=defaults.masking, choices=MASKINGS,
                        help="static: masked here, dupe_factor times; dynamic: masked by the reader each epoch")
    parser.add_argument("--whole_word_mask", action="store_true", help="mask whole words, not single pieces")
    parser.add_argument("--chinese_wwm", action="store_true", help="whole-word masking with jieba's Chinese words")
    parser.add_argument("--do_lower_case", type=_flag, default=None,
                        help="true/false; default: the tokenizer's own setting")
    parser.add_argument("--workers", type=int, default=1, help="processes building instances")
    parser.add_argument("--shard_size", type=int, default=100_000, help="instances per MindRecord file")


def _vocab_parser(sub: argparse._SubParsersAction) -> None:
    """`vocab`: corpus -> a trained tokenizer in a model directory."""
    parser = sub.add_parser("vocab", help="train a vocabulary on a corpus")
    _add_corpus_arguments(parser)
    parser.add_argument("--output", required=True, help="model directory to write the tokenizer into")
    parser.add_argument("--type", default="wordpiece", choices=["wordpiece", "bpe", "sentencepiece"])
    parser.add_argument("--vocab_size", type=int, default=30522)
    parser.add_argument("--min_frequency", type=int, default=2)
    parser.add_argument("--do_lower_case", type=_flag, default=True, help="true/false (default true)")


def _pretrain(args: argparse.Namespace) -> None:
    """Run the pretraining data builder with the parsed options."""
    from src.data.pretraining import PretrainOptions, create_pretraining_data

    options = PretrainOptions(
        max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq,
        masked_lm_prob=args.masked_lm_prob, short_seq_prob=args.short_seq_prob,
        dupe_factor=_dupe_factor(args.dupe_factor, args.masking),
        random_seed=args.random_seed, objective=args.objective, masking=args.masking,
        whole_word_mask=args.whole_word_mask, chinese_wwm=args.chinese_wwm, chunk_documents=args.chunk_documents)
    create_pretraining_data(args.input, args.model_dir, args.output, options, args.workers, args.format,
                            args.split_sentences, args.do_lower_case, args.shard_size, args.overwrite)


def _dupe_factor(given: int | None, masking: str) -> int:
    """BERT's 10 passes for static masking; one pass for dynamic, whose reader re-masks every epoch."""
    from src.data.pretraining import PretrainOptions

    if given is not None:
        return given
    return PretrainOptions.dupe_factor if masking == "static" else 1


def _vocab(args: argparse.Namespace) -> None:
    """Train the vocabulary with the parsed options."""
    from src.data.vocab import train_vocab

    train_vocab(args.input, args.output, args.type, args.vocab_size, args.do_lower_case, args.min_frequency,
                args.format, args.split_sentences, args.overwrite)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _pretrain_parser(sub)
    _vocab_parser(sub)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped job cleans up its temporary output
    try:
        {"pretrain": _pretrain, "vocab": _vocab}[args.command](args)
    except KeyboardInterrupt:
        print(f"interrupted: nothing written to {args.output}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run_cli(main)
