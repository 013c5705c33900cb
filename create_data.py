"""Raw data -> MindRecord: pretraining instances, task features, and vocabulary training for pretraining from scratch.

  python create_data.py pretrain --input corpus/ --model_dir models/bert_base --output data/pretrain \
      --max_seq_length 128 --max_predictions_per_seq 20 --dupe_factor 10 --workers 4
  python create_data.py pretrain --input zhwiki/ --model_dir models/ernie --output data/ernie \
      --objective nsp --chinese_wwm --masking dynamic
  python create_data.py pretrain --objective luke --dump_db data/enwiki.db --model_dir models/luke_base \
      --output data/luke_pretrain --max_seq_length 512 --whole_word_mask --masking dynamic
  python create_data.py vocab --input corpus/ --output models/scratch --type wordpiece --vocab_size 30522
  python create_data.py squad --input train-v1.1.json --model_dir models/bert_base --output data/squad_train
  python create_data.py ner --input conll2003/train.txt --model_dir models/bert_base --output data/conll_train
  python create_data.py classification --dataset mrpc --input MRPC/train.tsv --model_dir models/bert_base \
      --output data/mrpc_train
  python create_data.py race --input RACE/train --model_dir models/bert_base --output data/race_train
  python create_data.py mentions --dump enwiki-pages-articles.xml.bz2 --dump_db data/enwiki.db \
      --output data/enwiki_mentions
  python create_data.py open_entity --input OpenEntity/train.json --model_dir models/luke_base --output data/oe_train
  python create_data.py tacred --input tacred/dev.json --model_dir models/luke_base --output data/tacred_dev \
      --split eval --label_file data/tacred_train
  python create_data.py conll_spans --input conll2003/train.txt --model_dir models/luke_base --output data/conll_spans
"""
import argparse
import logging
import signal
import sys

from src.errors import UserError, run_cli


def _flag(value: str) -> bool:
    """A true/false command-line value."""
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{value!r}: expected true or false")
    return value.lower() == "true"


def _add_corpus_arguments(parser: argparse.ArgumentParser, input_required: bool = True) -> None:
    """Options shared by every subcommand that reads a raw corpus."""
    parser.add_argument("--input", nargs="+", required=input_required,
                        help="corpus files or folders (.gz/.bz2 read as is)")
    parser.add_argument("--format", default="auto", choices=["auto", "text", "wiki", "jsonl"],
                        help="corpus format: one sentence per line, WikiExtractor <doc>, or JSON lines with 'text'")
    parser.add_argument("--split_sentences", action="store_true",
                        help="split lines into sentences on English and Chinese sentence punctuation")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def _pretrain_parser(sub: argparse._SubParsersAction) -> None:
    """`pretrain`: corpus -> sharded MindRecord of pretraining instances."""
    from src.data.pretraining.instances import MASKINGS, OBJECTIVES, PretrainOptions

    defaults = PretrainOptions()
    parser = sub.add_parser("pretrain", help="corpus -> pretraining MindRecord shards")
    _add_corpus_arguments(parser, input_required=False)
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
    parser.add_argument("--objective", default=defaults.objective, choices=(*OBJECTIVES, "luke"),
                        help="nsp (BERT, NEZHA, ERNIE), sop (ALBERT), none (RoBERTa FULL-SENTENCES) or luke "
                             "(Wikipedia pages from --dump_db, hyperlinks as entities, masked words and entities)")
    parser.add_argument("--dump_db", help="luke: the wikipedia2vec DumpDB to read pages and links from")
    parser.add_argument("--max_entity_length", type=int, default=128, help="luke: entities per instance")
    parser.add_argument("--max_mention_length", type=int, default=30, help="luke: tokens per mention")
    parser.add_argument("--masked_entity_prob", type=float, default=0.15, help="luke: share of entities masked")
    parser.add_argument("--masking", default=defaults.masking, choices=MASKINGS,
                        help="static: masked here, dupe_factor times; dynamic: masked by the reader each epoch")
    parser.add_argument("--whole_word_mask", action="store_true", help="mask whole words, not single pieces")
    parser.add_argument("--chinese_wwm", action="store_true", help="whole-word masking with jieba's Chinese words")
    parser.add_argument("--do_lower_case", type=_flag, default=None,
                        help="true/false; default: the tokenizer's own setting")
    parser.add_argument("--workers", type=int, default=1, help="processes building instances")
    parser.add_argument("--shard_size", type=int, default=100_000, help="instances per MindRecord file")


def _mentions_parser(sub: argparse._SubParsersAction) -> None:
    """`mentions`: a Wikipedia dump (or the LUKE seeds' pickles) -> LUKE's mention DB (no pickle written)."""
    from src.data.entities.mention_db import MentionOptions

    defaults = MentionOptions()
    parser = sub.add_parser("mentions", help="Wikipedia dump -> mention DB (anchor texts, link probabilities)")
    parser.add_argument("--output", required=True, help="folder to write the mention DB into")
    parser.add_argument("--dump", help="a pages-articles .xml.bz2: built into --dump_db first (wikipedia2vec)")
    parser.add_argument("--dump_db", help="a wikipedia2vec DumpDB file to read (with --dump: the one to build)")
    parser.add_argument("--luke_pickle", help="convert the LUKE seed's WikiLinkDB pickle (enwiki_*.pkl)")
    parser.add_argument("--redirects_pickle", help="convert the LUKE seed's *_redirects.pkl (alone: a "
                                                   "redirects-only DB for --model_redirects)")
    parser.add_argument("--allow_pickle", action="store_true", help="allow reading the seeds' pickles (runs "
                                                                    "code from them: only for files you trust)")
    parser.add_argument("--min_link_prob", type=float, default=defaults.min_link_prob,
                        help="drop anchor texts linked less often than this per page containing them")
    parser.add_argument("--min_link_count", type=int, default=defaults.min_link_count,
                        help="drop (text, title) candidates linked fewer times")
    parser.add_argument("--max_mention_length", type=int, default=defaults.max_mention_length,
                        help="drop anchor texts of more words")
    parser.add_argument("--language", help="language of the entity titles (default: the dump's)")
    parser.add_argument("--workers", type=int, default=1, help="processes reading the dump")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def _mentions(args: argparse.Namespace) -> None:
    """Build or convert the mention DB with the parsed options."""
    from src.data.entities.mention_db import MentionOptions

    options = MentionOptions(args.min_link_prob, args.min_link_count, args.max_mention_length, args.language)
    pickles = args.luke_pickle or args.redirects_pickle
    if bool(pickles) == bool(args.dump or args.dump_db):
        raise UserError("mentions: expected either --dump_db (with --dump to build it) or the seeds' pickles "
                        "(--luke_pickle / --redirects_pickle), not both or neither")
    if pickles:
        from src.data.entities.luke_pickles import convert_luke_pickles

        convert_luke_pickles(args.output, options, args.luke_pickle, args.redirects_pickle, args.allow_pickle,
                             args.overwrite)
    else:
        from src.data.entities.mention_build import create_mention_db

        create_mention_db(args.output, options, args.dump_db, args.dump, args.workers, args.overwrite)


def _vocab_parser(sub: argparse._SubParsersAction) -> None:
    """`vocab`: corpus -> a trained tokenizer in a model directory."""
    parser = sub.add_parser("vocab", help="train a vocabulary on a corpus")
    _add_corpus_arguments(parser)
    parser.add_argument("--output", required=True, help="model directory to write the tokenizer into")
    parser.add_argument("--type", default="wordpiece", choices=["wordpiece", "bpe", "sentencepiece"])
    parser.add_argument("--vocab_size", type=int, default=30522)
    parser.add_argument("--min_frequency", type=int, default=2)
    parser.add_argument("--do_lower_case", type=_flag, default=True, help="true/false (default true)")


def _add_task_arguments(parser: argparse.ArgumentParser, max_seq_length: int) -> None:
    """Options every fine-tuning task's builder takes."""
    parser.add_argument("--input", required=True, help="the raw task file (or folder)")
    parser.add_argument("--model_dir", required=True, help="model directory holding the tokenizer files")
    parser.add_argument("--output", required=True, help="folder to write MindRecord shards and manifest.json into")
    parser.add_argument("--split", default="train", choices=["train", "eval"],
                        help="train: features with targets; eval: what prediction and scoring need")
    parser.add_argument("--max_seq_length", type=int, default=max_seq_length)
    parser.add_argument("--do_lower_case", type=_flag, default=None,
                        help="true/false; default: the tokenizer's own setting")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def _squad_parser(sub: argparse._SubParsersAction) -> None:
    """`squad`: SQuAD v1.1/v2.0 or CMRC2018 JSON -> windowed span features."""
    parser = sub.add_parser("squad", help="SQuAD v1.1/v2.0 or CMRC2018 JSON -> MindRecord features")
    _add_task_arguments(parser, 384)
    parser.add_argument("--doc_stride", type=int, default=128, help="tokens between the starts of two windows")
    parser.add_argument("--max_query_length", type=int, default=64, help="question tokens kept")
    parser.add_argument("--mention_db", help="LUKE: a mention DB folder (create_data.py mentions) to link entities")
    parser.add_argument("--model_redirects", help="LUKE: a mention DB of the entity vocabulary's dump whose "
                                                  "redirects map titles (default: --mention_db's own)")
    parser.add_argument("--max_entity_length", type=int, default=128, help="LUKE: entities kept per window")
    parser.add_argument("--max_mention_length", type=int, default=30, help="LUKE: tokens of a mention at most")
    parser.add_argument("--min_mention_link_prob", type=float, default=0.01,
                        help="LUKE: anchors linked less often than this are not looked for")
    parser.add_argument("--workers", type=int, default=1, help="processes building features (same output)")


def _squad(args: argparse.Namespace) -> None:
    from src.data.entities.linking import EntityOptions
    from src.data.tasks.squad import SquadOptions
    from src.data.tasks.squad_records import create_squad_data

    options = SquadOptions(args.max_seq_length, args.doc_stride, args.max_query_length)
    entity_options = EntityOptions(args.max_entity_length, args.max_mention_length, args.min_mention_link_prob)
    create_squad_data(args.input, args.model_dir, args.output, options, args.split, args.overwrite,
                      args.do_lower_case, args.mention_db, args.model_redirects, entity_options, args.workers)


def _labelled_task_parser(sub: argparse._SubParsersAction, name: str, help_text: str,
                          max_seq_length: int) -> argparse.ArgumentParser:
    """A subcommand whose eval split reuses the train split's labels."""
    parser = sub.add_parser(name, help=help_text)
    _add_task_arguments(parser, max_seq_length)
    parser.add_argument("--label_file", help="eval: the train output folder (or its manifest.json, a JSON "
                                             "list, or one label per line) whose labels to reuse")
    return parser


def _ner_parser(sub: argparse._SubParsersAction) -> None:
    """`ner`: CoNLL-2003 columns, CLUENER2020 JSON lines, MSRA/People's Daily character BIO files."""
    from src.data.tasks.ner import FORMATS

    parser = _labelled_task_parser(sub, "ner", "NER files -> MindRecord token features", 128)
    parser.add_argument("--format", default="auto", choices=FORMATS,
                        help="conll (word ... tag columns), cluener (JSON lines), char (character TAG lines)")
    parser.add_argument("--input_scheme", default="auto", help="tags of the file: iob1, bio, bioes or auto")
    parser.add_argument("--tag_scheme", default="bio", help="tags to train on: bio, bioes or iob1")


def _classification_parser(sub: argparse._SubParsersAction) -> None:
    """`classification`: GLUE TSVs, CLUE JSON lines, ChnSentiCorp TSV."""
    from src.data.tasks.classification import DATASETS

    parser = _labelled_task_parser(sub, "classification", "GLUE/CLUE files -> MindRecord features", 128)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="which dataset layout")


def _race_parser(sub: argparse._SubParsersAction) -> None:
    """`race`: RACE JSON files (a file or a folder walked) -> four-choice features."""
    _labelled_task_parser(sub, "race", "RACE files -> MindRecord multiple-choice features", 512)


ENTITY_TASKS = {  # LUKE's entity tasks: (help, max_seq_length, max_entity_length, max_mention_length)
    "open_entity": ("Open Entity JSON -> LUKE entity typing features", 256, 1, 30),
    "tacred": ("TACRED JSON -> LUKE relation classification features", 256, 2, 30),
    "conll_spans": ("CoNLL-2003 columns -> LUKE span classification features", 512, 128, 16),
}


def _entity_task_parsers(sub: argparse._SubParsersAction) -> None:
    """`open_entity`, `tacred`, `conll_spans`: LUKE's entity tasks (the model directory needs an entity vocabulary)."""
    for name, (help_text, max_seq_length, max_entities, max_mention) in ENTITY_TASKS.items():
        parser = _labelled_task_parser(sub, name, help_text, max_seq_length)
        parser.add_argument("--max_entity_length", type=int, default=max_entities, help="entities per feature")
        parser.add_argument("--max_mention_length", type=int, default=max_mention, help="tokens per mention")
        if name == "conll_spans":
            parser.add_argument("--context", default="document", choices=["document", "sentence"],
                                help="document: neighbouring words fill the window, as LUKE does")


def _entity_task(args: argparse.Namespace) -> None:
    from src.data.tasks.conll_spans import create_conll_span_data
    from src.data.tasks.entity_features import EntityTaskOptions
    from src.data.tasks.open_entity import create_open_entity_data
    from src.data.tasks.tacred import create_tacred_data

    builders = {"open_entity": create_open_entity_data, "tacred": create_tacred_data,
                "conll_spans": create_conll_span_data}
    options = EntityTaskOptions(args.max_seq_length, args.max_entity_length, args.max_mention_length,
                                getattr(args, "context", "sentence"), args.do_lower_case)
    builders[args.command](args.input, args.model_dir, args.output, options, args.split, args.overwrite,
                           args.label_file)


def _ner(args: argparse.Namespace) -> None:
    from src.data.tasks.ner import NerOptions, create_ner_data

    options = NerOptions(args.max_seq_length, args.format, args.input_scheme, args.tag_scheme, args.do_lower_case)
    create_ner_data(args.input, args.model_dir, args.output, options, args.split, args.overwrite, args.label_file)


def _classification(args: argparse.Namespace) -> None:
    from src.data.tasks.classification import ClassificationOptions, create_classification_data

    options = ClassificationOptions(args.dataset, args.max_seq_length, args.do_lower_case)
    create_classification_data(args.input, args.model_dir, args.output, options, args.split, args.overwrite,
                               args.label_file)


def _race(args: argparse.Namespace) -> None:
    from src.data.tasks.race import RaceOptions, create_race_data

    options = RaceOptions(args.max_seq_length, args.do_lower_case)
    create_race_data(args.input, args.model_dir, args.output, options, args.split, args.overwrite, args.label_file)


def _pretrain(args: argparse.Namespace) -> None:
    """Run the pretraining data builder with the parsed options."""
    from src.data.pretraining.instances import PretrainOptions
    from src.data.pretraining.records import create_pretraining_data

    if args.objective == "luke":
        _luke_pretrain(args)
        return
    if not args.input:
        raise UserError("--input: expected the corpus files or folders (only --objective luke reads --dump_db)")

    options = PretrainOptions(
        max_seq_length=args.max_seq_length, max_predictions_per_seq=args.max_predictions_per_seq,
        masked_lm_prob=args.masked_lm_prob, short_seq_prob=args.short_seq_prob,
        dupe_factor=_dupe_factor(args.dupe_factor, args.masking),
        random_seed=args.random_seed, objective=args.objective, masking=args.masking,
        whole_word_mask=args.whole_word_mask, chinese_wwm=args.chinese_wwm, chunk_documents=args.chunk_documents)
    create_pretraining_data(args.input, args.model_dir, args.output, options, args.workers, args.format,
                            args.split_sentences, args.do_lower_case, args.shard_size, args.overwrite)


def _luke_pretrain(args: argparse.Namespace) -> None:
    """LUKE's pretraining data from a DumpDB's pages."""
    from src.data.pretraining.luke import LukeOptions
    from src.data.pretraining.luke_records import create_luke_pretraining_data

    if not args.dump_db or args.input:
        raise UserError("--objective luke: expected --dump_db (a wikipedia2vec DumpDB) and no --input")
    options = LukeOptions(max_seq_length=args.max_seq_length, max_entity_length=args.max_entity_length,
                          max_mention_length=args.max_mention_length, masked_lm_prob=args.masked_lm_prob,
                          max_predictions_per_seq=args.max_predictions_per_seq,
                          masked_entity_prob=args.masked_entity_prob, masking=args.masking,
                          whole_word_mask=args.whole_word_mask, random_seed=args.random_seed)
    create_luke_pretraining_data(args.dump_db, args.model_dir, args.output, options, args.workers, args.shard_size,
                                 args.overwrite)


def _dupe_factor(given: int | None, masking: str) -> int:
    """BERT's 10 passes for static masking; one pass for dynamic, whose reader re-masks every epoch."""
    from src.data.pretraining.instances import PretrainOptions

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
    _squad_parser(sub)
    _ner_parser(sub)
    _classification_parser(sub)
    _race_parser(sub)
    _mentions_parser(sub)
    _entity_task_parsers(sub)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped job cleans up its temporary output
    try:
        commands = {"pretrain": _pretrain, "vocab": _vocab, "squad": _squad, "ner": _ner,
                    "classification": _classification, "race": _race, "mentions": _mentions,
                    **{name: _entity_task for name in ENTITY_TASKS}}
        commands[args.command](args)
    except KeyboardInterrupt:
        print(f"interrupted: nothing written to {args.output}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run_cli(main)
