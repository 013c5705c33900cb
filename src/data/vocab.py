"""Train a WordPiece, byte-level BPE or SentencePiece (Unigram) vocabulary on a corpus with HF tokenizers.

The result is a model directory's tokenizer files in the layout `load_tokenizer` reads: vocab.txt
(+ tokenizer_config.json) for WordPiece, vocab.json + merges.txt for BPE, tokenizer.json for Unigram.
"""
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

from src.data.corpus import list_files, read_documents
from src.data.tokenization import Tokenizer, load_tokenizer
from src.errors import UserError
from src.files import atomic_dir

KINDS = ("wordpiece", "bpe", "sentencepiece")
_SPECIALS = {"wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
             "bpe": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
             "sentencepiece": ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]}
_BATCH = 1000
log = logging.getLogger(__name__)


def train_vocab(inputs: list[str], output: str, kind: str, vocab_size: int, lowercase: bool = True,
                min_frequency: int = 2, fmt: str = "auto", split: bool = False,
                overwrite: bool = False) -> Tokenizer:
    """Train a vocabulary of `kind` on the corpus files and write it into the model directory `output`."""
    if kind not in KINDS:
        raise UserError(f"--type {kind!r}: expected one of {', '.join(KINDS)}")
    if vocab_size < len(_SPECIALS[kind]) + 1:
        raise UserError(f"--vocab_size {vocab_size}: too small to hold the special tokens and any text")
    skipped, seen = Counter(), Counter()
    files = list_files(inputs)
    backend, trainer = _untrained(kind, vocab_size, lowercase, min_frequency)
    with atomic_dir(output, overwrite) as folder:
        backend.train_from_iterator(_sentence_batches(read_documents(files, skipped, fmt, split), seen),
                                    trainer=trainer)
        if not seen["sentences"]:
            raise UserError(f"{', '.join(inputs)}: no usable text to train a vocabulary on "
                            f"(skipped: {dict(skipped) or 'nothing'})")
        _save(backend, kind, lowercase, Path(folder))
        load_tokenizer(folder)
    log.info("trained a %s vocabulary of %d tokens on %d sentences into %s; skipped: %s", kind,
             backend.get_vocab_size(), seen["sentences"], output, dict(skipped) or "none")
    return load_tokenizer(output)


def _untrained(kind: str, vocab_size: int, lowercase: bool,
               min_frequency: int) -> tuple[tokenizers.Tokenizer, trainers.Trainer]:
    """An empty tokenizer with the kind's normalization and pre-tokenization, and its trainer."""
    specials = _SPECIALS[kind]
    if kind == "wordpiece":
        backend = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
        backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                        strip_accents=None, lowercase=lowercase)
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return backend, trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                                  special_tokens=specials, show_progress=False)
    if kind == "bpe":
        backend = tokenizers.Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        return backend, trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, show_progress=False,
                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend = tokenizers.Tokenizer(models.Unigram())
    steps = [normalizers.NFKD(), normalizers.StripAccents()] + ([normalizers.Lowercase()] if lowercase else [])
    backend.normalizer = normalizers.Sequence(steps)
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return backend, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>",
                                            show_progress=False)


def _sentence_batches(documents: Iterator[list[str]], seen: Counter) -> Iterator[list[str]]:
    """Sentences in batches, streamed to the Rust trainer (counted in `seen`)."""
    batch: list[str] = []
    for document in documents:
        batch.extend(document)
        seen["sentences"] += len(document)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _save(backend: tokenizers.Tokenizer, kind: str, lowercase: bool, folder: Path) -> None:
    """Write the files `load_tokenizer` reads for this kind."""
    if kind == "wordpiece":
        vocab = sorted(backend.get_vocab().items(), key=lambda item: item[1])
        (folder / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
        settings = {"do_lower_case": lowercase}
        (folder / "tokenizer_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    elif kind == "bpe":
        backend.model.save(str(folder))
    else:
        cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        backend.save(str(folder / "tokenizer.json"))
