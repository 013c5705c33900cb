"""Fast tokenizers (HF `tokenizers`, Rust) loaded from a model directory, with character offsets.

A model directory holds one of: tokenizer.json, vocab.txt (BERT WordPiece), vocab.json + merges.txt
(RoBERTa byte-level BPE) or spiece.model (ALBERT SentencePiece Unigram). Each is rebuilt the way HF
transformers builds it, so the ids match a model trained with transformers' tokenizer. A directory with
an entity vocabulary (LUKE) gives a LukeTokenizer, whose encode() also returns the entity inputs.
"""
import hashlib
import json
import os
import shutil
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import tokenizers
import yaml
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors

from src.data.entities.encoding import ENT, ENT2, TASKS, EntityEncoder, EntityEncoding, Span
from src.data.entities.vocab import EntityVocab, find_entity_vocab, load_entity_vocab
from src.errors import UserError

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model")
_EXPECTED = "tokenizer.json, vocab.txt, vocab.json + merges.txt, or spiece.model"
_CONFIG_FILES = ("tokenizer_config.json", "config.yaml")
_ROLES = ("cls", "sep", "pad", "mask", "unk")
_SPECIAL_TOKENS = {
    "wordpiece": {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]", "unk": "[UNK]"},
    "bpe": {"cls": "<s>", "sep": "</s>", "pad": "<pad>", "mask": "<mask>", "unk": "<unk>"},
    "sentencepiece": {"cls": "[CLS]", "sep": "[SEP]", "pad": "<pad>", "mask": "[MASK]", "unk": "<unk>"},
}
_KIND_OF_MODEL = {"WordPiece": "wordpiece", "BPE": "bpe", "Unigram": "sentencepiece"}
_SPM_UNKNOWN, _SPM_CONTROL, _SPM_USER_DEFINED = 2, 3, 4
_SPM_UNIGRAM = 1
_T = TypeVar("_T")


@dataclass(frozen=True)
class Encoding:
    """One encoded input: ids plus what feature builders need (type ids, mask, char offsets, which text)."""

    ids: list[int]
    type_ids: list[int]
    attention_mask: list[int]
    offsets: list[tuple[int, int]]
    tokens: list[str]
    special_tokens_mask: list[int]
    sequence_ids: list[int | None]
    entities: EntityEncoding | None = None  # LUKE's entity inputs (LukeTokenizer only)


class Tokenizer:
    """A `tokenizers.Tokenizer` plus the special-token names and source files of its model directory."""

    def __init__(self, backend: tokenizers.Tokenizer, kind: str, source: Path, files: tuple[str, ...],
                 special_tokens: dict[str, str], settings: dict[str, Any]) -> None:
        self.backend = backend
        self.kind = kind
        self.source = source
        self._files = files
        self._special_tokens = special_tokens
        self._settings = settings
        self.vocab_size = max(backend.get_vocab(with_added_tokens=True).values()) + 1

    def encode(self, text: str, text_pair: str | None = None, max_length: int | None = None,
               padding: bool = False) -> Encoding:
        """Encode one text (or pair) with special tokens; truncate longest-first to max_length, pad if asked."""
        return self.encode_batch([text], None if text_pair is None else [text_pair], max_length, padding)[0]

    def encode_batch(self, texts: list[str], text_pairs: list[str] | None = None, max_length: int | None = None,
                     padding: bool = False) -> list[Encoding]:
        """Encode many texts (or pairs) in one parallel call; padding pads to max_length, or the longest if None.

        A text_pair of "" is an empty second segment ([CLS] A [SEP] [SEP]); only None means no pair.
        """
        inputs = texts if text_pairs is None else list(zip(texts, text_pairs, strict=True))
        try:
            self._configure(max_length, padding, is_pair=text_pairs is not None)
            encodings = self.backend.encode_batch(inputs)
        finally:
            self.backend.no_truncation()
            self.backend.no_padding()
        return [_to_encoding(encoding) for encoding in encodings]

    def tokenize(self, text: str) -> list[str]:
        """Split text into tokens, without special tokens."""
        return self.backend.encode(text, add_special_tokens=False).tokens

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        """Map tokens to ids; a token outside the vocabulary maps to the unknown token's id."""
        ids = [self.backend.token_to_id(token) for token in tokens]
        return [self.unk_token_id if token_id is None else token_id for token_id in ids]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        """Map ids to tokens; an id outside the vocabulary is an error naming it."""
        tokens = [self.backend.id_to_token(token_id) for token_id in ids]
        if None in tokens:
            bad = ids[tokens.index(None)]
            raise UserError(f"{self.source}: token id {bad} is not in the vocabulary (size {self.vocab_size})")
        return tokens

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        """Turn ids back into text with the model's decoder."""
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def fingerprint(self) -> str:
        """sha256 of the backend's JSON, so data manifests record exactly which tokenizer made them."""
        return hashlib.sha256(self.backend.to_str().encode("utf-8")).hexdigest()

    def save(self, model_dir: str | os.PathLike[str]) -> list[Path]:
        """Copy the tokenizer files (and its settings) into model_dir, so a converted checkpoint carries them."""
        target = Path(model_dir)
        target.mkdir(parents=True, exist_ok=True)
        written = [_write_atomic(target / name, lambda tmp, n=name: shutil.copyfile(self.source / n, tmp))
                   for name in self._files]
        if self._settings:
            text = json.dumps(self._settings, indent=2, ensure_ascii=False) + "\n"
            written.append(_write_atomic(target / "tokenizer_config.json", lambda tmp: tmp.write_text(text, "utf-8")))
        return written

    @property
    def cls_token(self) -> str:
        """The classification token ([CLS] or <s>)."""
        return self._special_token("cls")

    @property
    def sep_token(self) -> str:
        """The separator token ([SEP] or </s>)."""
        return self._special_token("sep")

    @property
    def pad_token(self) -> str:
        """The padding token ([PAD] or <pad>)."""
        return self._special_token("pad")

    @property
    def mask_token(self) -> str:
        """The masked-LM token ([MASK] or <mask>)."""
        return self._special_token("mask")

    @property
    def unk_token(self) -> str:
        """The unknown token ([UNK] or <unk>)."""
        return self._special_token("unk")

    @property
    def cls_token_id(self) -> int:
        """Id of the classification token."""
        return self.backend.token_to_id(self.cls_token)

    @property
    def sep_token_id(self) -> int:
        """Id of the separator token."""
        return self.backend.token_to_id(self.sep_token)

    @property
    def pad_token_id(self) -> int:
        """Id of the padding token."""
        return self.backend.token_to_id(self.pad_token)

    @property
    def mask_token_id(self) -> int:
        """Id of the masked-LM token."""
        return self.backend.token_to_id(self.mask_token)

    @property
    def unk_token_id(self) -> int:
        """Id of the unknown token."""
        return self.backend.token_to_id(self.unk_token)

    def _special_token(self, role: str) -> str:
        """The named special token, checked to be in the vocabulary (data builders need [MASK], [PAD]...)."""
        token = self._special_tokens[role]
        if self.backend.token_to_id(token) is None:
            raise UserError(f"{self.source}: the vocabulary has no {role} token {token!r}; add it to the vocabulary")
        return token

    def _configure(self, max_length: int | None, padding: bool, is_pair: bool) -> None:
        """Set the backend's truncation and padding for one call (reset after it)."""
        if max_length is not None:
            needed = self.backend.num_special_tokens_to_add(is_pair)
            if max_length < needed:
                raise UserError(f"max_length {max_length} is too small: the special tokens alone take {needed}")
            self.backend.enable_truncation(max_length, strategy="longest_first")
        if padding:
            self.backend.enable_padding(pad_id=self.pad_token_id, pad_token=self.pad_token, length=max_length)


class LukeTokenizer(Tokenizer):
    """The word tokenizer plus LUKE's entity vocabulary and <ent>/<ent2> markers (transformers' LukeTokenizer)."""

    def __init__(self, words: Tokenizer, entity_vocab: EntityVocab, max_entity_length: int,
                 max_mention_length: int) -> None:
        words.backend.add_special_tokens([AddedToken(name, normalized=False, special=True) for name in (ENT, ENT2)])
        super().__init__(words.backend, words.kind, words.source, words._files, words._special_tokens,
                         words._settings)
        self.entity_vocab = entity_vocab
        specials = {"cls": self.cls_token_id, "sep": self.sep_token_id, "pad": self.pad_token_id,
                    ENT: self.backend.token_to_id(ENT), ENT2: self.backend.token_to_id(ENT2)}
        self.entities = EntityEncoder(self.backend, entity_vocab, specials, max_entity_length, max_mention_length)

    def encode(self, text: str, text_pair: str | None = None, max_length: int | None = None, padding: bool = False,
               entity_spans: list[Span] | None = None, entity_spans_pair: list[Span] | None = None,
               entities: list[str] | None = None, entities_pair: list[str] | None = None,
               max_entity_length: int | None = None, max_mention_length: int | None = None,
               task: str | None = None, language: str | None = None) -> Encoding:
        """Encode as Tokenizer.encode, plus `entities`: character spans -> token positions, titles -> ids
        ([MASK] without titles; a task's markers and entities as transformers' task modes make them)."""
        if task is None and all(value is None for value in (entity_spans, entity_spans_pair, entities, entities_pair)):
            words = super().encode(text, text_pair, max_length, padding)
            return replace(words, entities=self.entities.no_entities(padding, max_entity_length, max_mention_length))
        first = self.entities.segment(text, entity_spans, entities, language)
        if task is not None:
            if task not in TASKS or text_pair is not None:
                raise UserError(f"task {task!r}: expected one of {', '.join(TASKS)}, on a single text")
            first = self.entities.mark(first, task, entity_spans or [])
        second = None if text_pair is None else self.entities.segment(text_pair, entity_spans_pair,
                                                                       entities_pair, language)
        words, found = self.entities.encode(first, second, max_length, padding, max_entity_length,
                                            max_mention_length)
        return Encoding(**words, entities=found)

    def fingerprint(self) -> str:
        """sha256 over the word tokenizer's and the entity vocabulary's fingerprints."""
        both = super().fingerprint() + self.entity_vocab.fingerprint()
        return hashlib.sha256(both.encode("ascii")).hexdigest()

    def save(self, model_dir: str | os.PathLike[str]) -> list[Path]:
        """Copy the tokenizer files and the entity vocabulary into model_dir."""
        return super().save(model_dir) + [self.entity_vocab.save(str(model_dir))]


def load_tokenizer(model_dir: str | os.PathLike[str], do_lower_case: bool | None = None) -> Tokenizer:
    """Load the tokenizer of a model directory (tokenizer.json, vocab.txt, vocab.json+merges.txt or spiece.model).

    do_lower_case applies to vocab.txt and spiece.model; None reads it from config.yaml, then
    tokenizer_config.json, else True. tokenizer.json is used exactly as written.
    """
    directory = Path(model_dir)
    words = _load_words(directory, do_lower_case)
    entity_vocab = find_entity_vocab(str(directory))
    if entity_vocab is None:
        return words
    lengths = _luke_lengths(directory)
    return LukeTokenizer(words, load_entity_vocab(str(entity_vocab)), **lengths)


def _luke_lengths(directory: Path) -> dict[str, int]:
    """max_entity_length (default 128) and max_mention_length (default 30) from config.yaml."""
    path = directory / "config.yaml"
    config = _read(path, "a YAML mapping", lambda: _load_mapping(path)) if path.is_file() else {}
    lengths = {"max_entity_length": config.get("max_entity_length", 128),
               "max_mention_length": config.get("max_mention_length", 30)}
    bad = next((key for key, value in lengths.items() if type(value) is not int or value < 1), None)
    if bad is not None:
        raise UserError(f"{path}: {bad} is {lengths[bad]!r}; expected a positive integer")
    return lengths


def _load_words(directory: Path, do_lower_case: bool | None) -> Tokenizer:
    """The word tokenizer of a model directory."""
    present = {name for name in TOKENIZER_FILES if (directory / name).is_file()}
    settings = _read_settings(directory)
    if do_lower_case is not None:
        settings["do_lower_case"] = do_lower_case
    if "tokenizer.json" in present:
        return _load_tokenizer_json(directory, settings)
    if "vocab.txt" in present:
        return _load_wordpiece(directory, settings)
    if {"vocab.json", "merges.txt"} <= present:
        return _load_bpe(directory, settings)
    if "spiece.model" in present:
        return _load_sentencepiece(directory, settings)
    raise UserError(f"{directory}: no tokenizer found; expected {_EXPECTED}")


def _load_tokenizer_json(directory: Path, settings: dict[str, Any]) -> Tokenizer:
    """tokenizer.json: the backend exactly as the file describes it; the kind follows its model type."""
    path = directory / "tokenizer.json"
    backend = _read(path, "a tokenizers JSON file", lambda: tokenizers.Tokenizer.from_file(str(path)))
    model_type = type(backend.model).__name__
    if model_type not in _KIND_OF_MODEL:
        raise UserError(f"{path}: model type {model_type} is not supported; expected WordPiece, BPE or Unigram")
    backend.no_truncation()
    backend.no_padding()
    kind = _KIND_OF_MODEL[model_type]
    return Tokenizer(backend, kind, directory, ("tokenizer.json",), _special_names(kind, settings), settings)


def _load_wordpiece(directory: Path, settings: dict[str, Any]) -> Tokenizer:
    """vocab.txt: BERT's WordPiece pipeline, as transformers' BertTokenizer builds it."""
    path = directory / "vocab.txt"
    vocab = _read(path, "a WordPiece vocabulary, one token per line", lambda: models.WordPiece.read_file(str(path)))
    if not vocab:
        raise UserError(f"{path}: the vocabulary is empty; expected one token per line")
    specials = _special_names("wordpiece", settings)
    if specials["unk"] not in vocab:
        raise UserError(f"{path}: no unknown token {specials['unk']!r}; WordPiece needs it for words it cannot split")
    lower = _flag(settings, "do_lower_case", True, directory)
    backend = tokenizers.Tokenizer(models.WordPiece(vocab, unk_token=specials["unk"], max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lower)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    _add_special_tokens(backend, specials.values())
    tokenizer = Tokenizer(backend, "wordpiece", directory, ("vocab.txt",), specials,
                          {**settings, "do_lower_case": lower})
    backend.post_processor = _bert_template(tokenizer)
    return tokenizer


def _load_bpe(directory: Path, settings: dict[str, Any]) -> Tokenizer:
    """vocab.json + merges.txt: RoBERTa's byte-level BPE, as transformers' RobertaTokenizer builds it."""
    vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
    vocab, merges = _read(vocab_path, "a BPE vocab.json (token -> id) with a matching merges.txt",
                          lambda: models.BPE.read_file(str(vocab_path), str(merges_path)))
    backend = tokenizers.Tokenizer(models.BPE(vocab, merges, dropout=None, continuing_subword_prefix="",
                                              end_of_word_suffix="", fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    specials = _special_names("bpe", settings)
    _add_special_tokens(backend, specials.values())
    tokenizer = Tokenizer(backend, "bpe", directory, ("vocab.json", "merges.txt"), specials, settings)
    backend.post_processor = processors.RobertaProcessing(
        (tokenizer.sep_token, tokenizer.sep_token_id), (tokenizer.cls_token, tokenizer.cls_token_id),
        trim_offsets=True, add_prefix_space=False)
    return tokenizer


def _load_sentencepiece(directory: Path, settings: dict[str, Any]) -> Tokenizer:
    """spiece.model: ALBERT's Unigram pipeline, as transformers' AlbertTokenizer and AlbertConverter build it."""
    path = directory / "spiece.model"
    pieces, charsmap = _read(path, "a SentencePiece model", lambda: _parse_sentencepiece(path.read_bytes()))
    unk_ids = [index for index, (_, _, kind) in enumerate(pieces) if kind == _SPM_UNKNOWN]
    if not unk_ids:
        raise UserError(f"{path}: not a valid SentencePiece model (no unknown piece)")
    lower = _flag(settings, "do_lower_case", True, directory)
    keep_accents = _flag(settings, "keep_accents", False, directory)
    vocab = [(piece, _albert_score(piece, score)) for piece, score, _ in pieces]
    backend = tokenizers.Tokenizer(models.Unigram(vocab, unk_id=unk_ids[0], byte_fallback=False))
    backend.normalizer = _albert_normalizer(lower, keep_accents, charsmap)
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.add_tokens([AddedToken(piece, normalized=False, special=kind == _SPM_CONTROL)
                        for piece, _, kind in pieces if kind in (_SPM_CONTROL, _SPM_USER_DEFINED)])
    specials = {**_special_names("sentencepiece", settings), "unk": pieces[unk_ids[0]][0]}
    _add_special_tokens(backend, specials.values())
    tokenizer = Tokenizer(backend, "sentencepiece", directory, ("spiece.model",), specials,
                          {**settings, "do_lower_case": lower, "keep_accents": keep_accents})
    backend.post_processor = _bert_template(tokenizer)
    return tokenizer


def _albert_score(piece: str, score: float) -> float:
    """AlbertConverter's penalty on pieces like '1,': ALBERT's tokenizer splits a digit from a trailing comma."""
    return score - 100 if len(piece) >= 2 and piece[-1] == "," and piece[-2].isdigit() else score


def _albert_normalizer(lower: bool, keep_accents: bool, charsmap: bytes) -> normalizers.Normalizer:
    """ALBERT's normalizer: `` and '' to ", NFKD + strip accents, lowercase, then the model's charsmap."""
    steps = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    if not keep_accents:
        steps += [normalizers.NFKD(), normalizers.StripAccents()]
    if lower:
        steps.append(normalizers.Lowercase())
    if charsmap:
        steps.append(normalizers.Precompiled(charsmap))
    return normalizers.Sequence(steps)


def _bert_template(tokenizer: Tokenizer) -> processors.TemplateProcessing:
    """BERT's '[CLS] A [SEP] B [SEP]' template (B gets type id 1); errors if [CLS] or [SEP] is missing."""
    cls, sep = tokenizer.cls_token, tokenizer.sep_token
    return processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, tokenizer.cls_token_id), (sep, tokenizer.sep_token_id)])


def _add_special_tokens(backend: tokenizers.Tokenizer, names: Iterable[str]) -> None:
    """Match the special tokens the vocabulary has as whole tokens when written in the text, as transformers does."""
    present = [name for name in names if backend.token_to_id(name) is not None]
    backend.add_special_tokens([AddedToken(name, normalized=False, special=True) for name in present])


def _special_names(kind: str, settings: dict[str, Any]) -> dict[str, str]:
    """The kind's special-token names, overridden by tokenizer_config.json's cls_token, sep_token, ..."""
    names = dict(_SPECIAL_TOKENS[kind])
    for role in _ROLES:
        value = settings.get(f"{role}_token")
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            names[role] = value
    return names


def _read_settings(directory: Path) -> dict[str, Any]:
    """Tokenizer settings: tokenizer_config.json, then config.yaml's do_lower_case/keep_accents on top."""
    settings: dict[str, Any] = {}
    for name in _CONFIG_FILES:
        path = directory / name
        if path.is_file():
            loaded = _read(path, "a JSON/YAML mapping", lambda p=path: _load_mapping(p))
            if name == "config.yaml":
                loaded = {key: loaded[key] for key in ("do_lower_case", "keep_accents")
                          if loaded.get(key) is not None}  # None there means "the tokenizer's own"
            settings.update(loaded)
    return settings


def _load_mapping(path: Path) -> dict[str, Any]:
    """A JSON or YAML file that must hold a mapping."""
    text = path.read_text(encoding="utf-8")
    loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"top level is a {type(loaded).__name__}, not a mapping")
    return loaded


def _flag(settings: dict[str, Any], key: str, default: bool, directory: Path) -> bool:
    """A boolean tokenizer setting, checked to be true or false."""
    value = settings.get(key, default)
    if not isinstance(value, bool):
        raise UserError(f"{directory}: {key} is {value!r}; expected true or false")
    return value


def _read(path: Path, expected: str, loader: Callable[[], _T]) -> _T:
    """Run a file loader, turning any failure into one line naming the file and what it should be."""
    try:
        return loader()
    except Exception as err:  # the Rust loaders raise bare Exception
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path}: cannot read it as {expected} ({reason})") from None


def _write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary file and rename, so a crash never leaves a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def _to_encoding(encoding: tokenizers.Encoding) -> Encoding:
    """Copy a Rust encoding into plain Python lists."""
    return Encoding(ids=encoding.ids, type_ids=encoding.type_ids, attention_mask=encoding.attention_mask,
                    offsets=encoding.offsets, tokens=encoding.tokens,
                    special_tokens_mask=encoding.special_tokens_mask, sequence_ids=encoding.sequence_ids)


def _parse_sentencepiece(data: bytes) -> tuple[list[tuple[str, float, int]], bytes]:
    """Read a SentencePiece ModelProto: pieces (field 1), trainer_spec (2), normalizer_spec (3) charsmap (its 2)."""
    pieces, charsmap = [], b""
    for field, value in _proto_fields(data):
        if field == 1:
            pieces.append(_parse_piece(_as_bytes(value)))
        elif field == 2 and _trainer_model_type(_as_bytes(value)) != _SPM_UNIGRAM:
            raise ValueError("model type is not unigram; ALBERT uses a Unigram model")
        elif field == 3:
            charsmap = next((_as_bytes(v) for f, v in _proto_fields(_as_bytes(value)) if f == 2), charsmap)
    if not pieces:
        raise ValueError("no pieces")
    return pieces, charsmap


def _parse_piece(data: bytes) -> tuple[str, float, int]:
    """Read one SentencePiece message: piece (1, string), score (2, float), type (3, enum, default NORMAL)."""
    piece, score, kind = "", 0.0, 1
    for field, value in _proto_fields(data):
        if field == 1:
            piece = _as_bytes(value).decode("utf-8")
        elif field == 2:
            score = struct.unpack("<f", _as_bytes(value))[0]
        elif field == 3:
            kind = value
    return piece, score, kind


def _trainer_model_type(data: bytes) -> int:
    """TrainerSpec.model_type (field 3, default UNIGRAM)."""
    return next((value for field, value in _proto_fields(data) if field == 3), _SPM_UNIGRAM)


def _as_bytes(value: int | bytes) -> bytes:
    """A length-delimited or fixed-width field's payload (a varint here means a malformed file)."""
    if not isinstance(value, bytes):
        raise ValueError("unexpected varint field")
    return value


def _proto_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Walk protobuf wire format: (field number, varint int or payload bytes) per field."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        if pos > len(data):
            raise ValueError("truncated")
        yield field, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at pos; returns (value, next position)."""
    value, shift = 0, 0
    while pos < len(data):
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos
    raise ValueError("truncated varint")
