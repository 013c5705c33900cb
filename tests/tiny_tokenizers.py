"""Tiny tokenizers of the three kinds, trained on a test's corpus and saved as model directories
hold them (vocab.txt; vocab.json + merges.txt; spiece.model, plus the tokenizer.json transformers'
AlbertConverter makes)."""
import json
import types
from pathlib import Path

import sentencepiece as spm
from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer
from transformers.convert_slow_tokenizer import AlbertConverter

BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_wordpiece(corpus: list[str], folder: Path, vocab_size: int, lowercase: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=lowercase)
    wordpiece.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1, show_progress=False)
    wordpiece.save_model(str(folder))
    return folder


def train_bpe(corpus: list[str], folder: Path, vocab_size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1, show_progress=False,
                            special_tokens=BPE_SPECIALS)
    bpe.save_model(str(folder))
    return folder


def train_sentencepiece(corpus: list[str], folder: Path, vocab_size: int, **options) -> Path:
    """An ALBERT-style unigram spiece.model ([CLS], [SEP], [MASK], <pad>, <unk>)."""
    folder.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_prefix=str(folder / "spiece"), vocab_size=vocab_size,
        model_type="unigram", pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece="<pad>", unk_piece="<unk>",
        bos_piece="[CLS]", eos_piece="[SEP]", user_defined_symbols=["[MASK]"], normalization_rule_name="nmt_nfkc",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, **options)
    return folder


def albert_tokenizer_json(model_file: Path, target: Path) -> Path:
    """Write the tokenizer.json transformers' AlbertConverter makes (what ALBERT checkpoints on the Hub ship)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    processor = spm.SentencePieceProcessor(model_file=str(model_file))
    slow = types.SimpleNamespace(vocab_file=str(model_file), keep_accents=False, do_lower_case=True,
                                 convert_tokens_to_ids=processor.piece_to_id)
    AlbertConverter(slow).converted().save(str(target))
    return target


LUKE_ENTITIES = ["[PAD]", "[UNK]", "[MASK]", "[MASK2]", "Beyoncé", "Los Angeles", "東京", "Paris", "New York"]


def train_luke(corpus: list[str], folder: Path, vocab_size: int, entities: list[str] = LUKE_ENTITIES) -> Path:
    """A LUKE tokenizer directory: byte-level BPE files plus a flat entity_vocab.json (id = list order)."""
    train_bpe(corpus, folder, vocab_size)
    (folder / "entity_vocab.json").write_text(
        json.dumps({title: index for index, title in enumerate(entities)}, ensure_ascii=False), encoding="utf-8")
    return folder
