"""LUKE's entity vocabulary: entity title -> id, read from any of the released formats.

entity_vocab.json (transformers: a flat {title: id}; mLUKE titles read "en:Title"),
entity_vocab.tsv (the original repository: `title<TAB>count`, id = line number) and
entity_vocab.jsonl (original multilingual: {"id", "entities": [[title, language], ...]}).
Special entities are looked up by name, never by a fixed id: releases number them differently.
"""
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Optional

from src.errors import UserError

ENTITY_VOCAB_FILES = ("entity_vocab.json", "entity_vocab.tsv", "entity_vocab.jsonl")
PAD, UNK, MASK, MASK2 = "[PAD]", "[UNK]", "[MASK]", "[MASK2]"
_REQUIRED = (PAD, UNK, MASK)


class EntityVocab:
    """Titles (language-prefixed where multilingual) to ids, with the special entities' ids."""

    def __init__(self, ids: dict[str, int], source: Path) -> None:
        self.source = source
        self._ids = ids
        self._titles = {index: title for title, index in reversed(list(ids.items()))}
        missing = [name for name in _REQUIRED if name not in ids]
        if missing:
            raise UserError(f"{source}: the entity vocabulary has no {', '.join(missing)}; "
                            f"expected the special entities {', '.join(_REQUIRED)}")
        self.size = max(ids.values()) + 1

    def __len__(self) -> int:
        return self.size

    def __contains__(self, title: str) -> bool:
        return self.get(title) is not None

    def get(self, title: str, language: Optional[str] = None) -> Optional[int]:
        """The id of a title ("Title", or "lang:Title" tried first when a language is given)."""
        if language is not None:
            found = self._ids.get(f"{language}:{title}")
            if found is not None:
                return found
        return self._ids.get(title)

    def id(self, title: str, language: Optional[str] = None) -> int:
        """The id of a title, or [UNK]'s for a title outside the vocabulary."""
        found = self.get(title, language)
        return self.unk_id if found is None else found

    def title(self, index: int) -> str:
        """The title of an id (the first one listed where several titles share it)."""
        if index not in self._titles:
            raise UserError(f"{self.source}: entity id {index} is not in the entity vocabulary")
        return self._titles[index]

    @property
    def pad_id(self) -> int:
        return self._ids[PAD]

    @property
    def unk_id(self) -> int:
        return self._ids[UNK]

    @property
    def mask_id(self) -> int:
        return self._ids[MASK]

    @property
    def mask2_id(self) -> int:
        """[MASK2] where the release has it (the second masked entity), else [MASK]."""
        return self._ids.get(MASK2, self.mask_id)

    def fingerprint(self) -> str:
        """sha256 of the vocabulary file, so data manifests record which vocabulary made them."""
        return hashlib.sha256(self.source.read_bytes()).hexdigest()

    def save(self, model_dir: str) -> Path:
        """Copy the vocabulary file, in its own format, into model_dir (temp + rename)."""
        target = Path(model_dir) / self.source.name
        if target.resolve() != self.source.resolve():
            tmp = target.with_name(target.name + ".tmp")
            shutil.copyfile(self.source, tmp)
            os.replace(tmp, target)
        return target


def find_entity_vocab(model_dir: str) -> Optional[Path]:
    """The entity vocabulary file of a model directory, or None where it has none."""
    return next((Path(model_dir) / name for name in ENTITY_VOCAB_FILES
                 if (Path(model_dir) / name).is_file()), None)


def load_entity_vocab(path: str) -> EntityVocab:
    """Read an entity vocabulary from its file or from the model directory holding it."""
    if os.path.isdir(path):
        found = find_entity_vocab(path)
        if found is None:
            raise UserError(f"{path}: no entity vocabulary; expected one of {', '.join(ENTITY_VOCAB_FILES)}")
        path = str(found)
    source = Path(path)
    readers = {".json": _read_json, ".tsv": _read_tsv, ".jsonl": _read_jsonl}
    if source.suffix not in readers:
        raise UserError(f"{source}: unknown entity vocabulary format; expected .json, .tsv or .jsonl")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{source}: cannot read the entity vocabulary ({err})") from None
    try:
        ids = readers[source.suffix](text)
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise UserError(f"{source}: not an entity vocabulary in the {source.suffix} format ({err})") from None
    return EntityVocab(ids, source)


def _read_json(text: str) -> dict[str, int]:
    """transformers' flat {title: id}."""
    loaded = json.loads(text)
    if not isinstance(loaded, dict) or not all(isinstance(v, int) for v in loaded.values()):
        raise ValueError("expected a JSON object of title -> integer id")
    return loaded


def _read_tsv(text: str) -> dict[str, int]:
    """The original `title<TAB>count` lines; the id is the line number."""
    ids: dict[str, int] = {}
    for index, line in enumerate(text.splitlines()):
        title = line.split("\t", 1)[0]
        ids.setdefault(title, index)
    return ids


def _read_jsonl(text: str) -> dict[str, int]:
    """The original multilingual lines {"id": N, "entities": [[title, language], ...]}."""
    ids: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        for title, language in record["entities"]:
            key = title if language is None or title in _REQUIRED + (MASK2,) else f"{language}:{title}"
            ids.setdefault(key, int(record["id"]))
    return ids
