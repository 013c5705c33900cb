"""Wikipedia dumps through wikipedia2vec's DumpDB: building one from a pages-articles XML dump, and reading it.

A DumpDB (wikipedia2vec 2.0.0) is an LMDB file with three tables: `__meta__` (dump file name,
language), `__redirect__` (title -> target title) and `__page__` (title -> zlib-compressed pickle of
the page's paragraphs: text, wiki links (title, anchor text, start, end), abstract flag). The pages
are read here with an unpickler that refuses every class, so reading a DumpDB runs no code from it:
the page records hold only tuples, lists, strings, numbers and booleans.
"""
import bz2
import io
import logging
import os
import pickle
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.errors import UserError

log = logging.getLogger(__name__)
MAX_REDIRECT_STEPS = 10  # as wikipedia2vec's resolve_redirect
_OPEN: dict[tuple[str, int], Any] = {}  # LMDB refuses a second environment on one file in a process


@dataclass(frozen=True)
class WikiLink:
    """A hyperlink in a paragraph: target title (as written, redirects unresolved), anchor text, span."""

    title: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of a page, with its links' character spans in `text`."""

    text: str
    links: tuple[WikiLink, ...]


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain containers only: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> None:
        raise pickle.UnpicklingError(f"refusing {module}.{name}: a DumpDB page holds no classes")


class DumpDB:
    """Read-only view of a wikipedia2vec DumpDB file; a file that is not one is a UserError naming it."""

    def __init__(self, path: str) -> None:
        import lmdb

        self.path = str(path)
        if not os.path.isfile(self.path):
            raise UserError(f"{path}: no such DumpDB file (build one with `create_data.py mentions --dump "
                            "FILE.xml.bz2 --dump_db PATH`)")
        key = (os.path.realpath(self.path), os.stat(self.path).st_ino)
        try:
            if key not in _OPEN:
                _OPEN[key] = lmdb.open(self.path, readonly=True, subdir=False, lock=False, max_dbs=3)
            self._env = _OPEN[key]
            self._meta = self._env.open_db(b"__meta__", create=False)
            self._pages = self._env.open_db(b"__page__", create=False)
            self._redirects = self._env.open_db(b"__redirect__", create=False)
            with self._env.begin(db=self._meta) as txn:
                meta = {key.decode("utf-8"): value.decode("utf-8") for key, value in txn.cursor()}
        except lmdb.Error as err:
            _OPEN.pop(key, None)
            raise UserError(f"{path}: not a wikipedia2vec DumpDB ({err})") from None
        if "language" not in meta:
            raise UserError(f"{path}: not a wikipedia2vec DumpDB (its meta table has no language)")
        self.language = meta["language"]
        self.dump_file = meta.get("dump_file", "")

    def page_count(self) -> int:
        """How many (non-redirect) pages the dump holds."""
        with self._env.begin(db=self._pages) as txn:
            return txn.stat()["entries"]

    def titles(self) -> Iterator[str]:
        """Page titles in the DB's (sorted byte) order."""
        with self._env.begin(db=self._pages) as txn:
            for key in txn.cursor().iternext(values=False):
                yield key.decode("utf-8")

    def redirects(self) -> dict[str, str]:
        """Every redirect, source title -> final target (chains followed, loops left unresolved)."""
        with self._env.begin(db=self._redirects) as txn:
            direct = {key.decode("utf-8"): value.decode("utf-8") for key, value in txn.cursor()}
        return {source: follow_redirects(source, direct) for source in direct}

    def resolve(self, titles: set[str]) -> dict[str, str]:
        """For those of the titles that are redirects: the title each chain ends at (loops: left out)."""
        resolved = {}
        with self._env.begin(db=self._redirects) as txn:
            for title in titles:
                seen, current = {title}, title
                for _ in range(MAX_REDIRECT_STEPS):
                    target = txn.get(current.encode("utf-8"))
                    if target is None or target.decode("utf-8") in seen:
                        break
                    current = target.decode("utf-8")
                    seen.add(current)
                if current != title and txn.get(current.encode("utf-8")) is None:
                    resolved[title] = current
        return resolved

    def paragraphs(self, title: str) -> list[Paragraph]:
        """The paragraphs of one page; a missing title is a KeyError."""
        with self._env.begin(db=self._pages) as txn:
            value = txn.get(title.encode("utf-8"))
        if value is None:
            raise KeyError(title)
        return _decode_page(value, title, self.path)

    def pages(self, titles: list[str]) -> Iterator[tuple[str, list[Paragraph]]]:
        """(title, paragraphs) for the given titles, in that order, in one read transaction."""
        with self._env.begin(db=self._pages) as txn:
            for title in titles:
                value = txn.get(title.encode("utf-8"))
                yield title, ([] if value is None else _decode_page(value, title, self.path))


def follow_redirects(title: str, redirects: dict[str, str]) -> str:
    """The title a redirect chain ends at; a loop or an over-long chain gives the title itself back."""
    seen, current = {title}, title
    for _ in range(MAX_REDIRECT_STEPS):
        target = redirects.get(current)
        if target is None:
            return current
        if target in seen:
            return title
        seen.add(target)
        current = target
    return title


def _decode_page(value: bytes, title: str, path: str) -> list[Paragraph]:
    """A page record -> paragraphs; a record of another shape is a UserError naming the DB and page."""
    try:
        paragraphs, _is_disambiguation = _PlainUnpickler(io.BytesIO(zlib.decompress(value))).load()
        return [Paragraph(text, tuple(WikiLink(*link) for link in links)) for text, links, _abstract in paragraphs]
    except (pickle.UnpicklingError, zlib.error, ValueError, TypeError, EOFError) as err:
        raise UserError(f"{path}: page {title!r} is not a wikipedia2vec 2.0 page record ({err})") from None


def check_xml_dump(path: str) -> str:
    """The language of a pages-articles dump (.xml.bz2); anything else is a UserError naming the file."""
    expected = "a Wikipedia pages-articles XML dump compressed with bzip2 (*-pages-articles.xml.bz2)"
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file; expected {expected}")
    try:
        with bz2.open(path, "rt", encoding="utf-8") as f:
            head = f.read(4096)
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not {expected} ({err})") from None
    if "<mediawiki" not in head or 'xml:lang="' not in head:
        raise UserError(f"{path}: not {expected} (no <mediawiki xml:lang=...> header)")
    return head.split('xml:lang="', 1)[1].split('"', 1)[0]


def build_dump_db(dump_path: str, db_path: str, workers: int = 1, overwrite: bool = False) -> DumpDB:
    """wikipedia2vec's own DumpDB build step over a pages-articles .xml.bz2, written atomically to db_path."""
    from wikipedia2vec.dump_db import DumpDB as Wikipedia2VecDumpDB
    from wikipedia2vec.utils.wiki_dump_reader import WikiDumpReader

    check_xml_dump(dump_path)
    target = Path(db_path)
    if target.exists() and not overwrite:
        raise UserError(f"{db_path}: exists; pass it alone as --dump_db to reuse it, or --overwrite to rebuild it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    log.info("building the DumpDB %s from %s (wikipedia2vec, %d processes)", db_path, dump_path, workers)
    try:
        Wikipedia2VecDumpDB.build(WikiDumpReader(dump_path), str(partial), pool_size=workers, chunk_size=100)
        os.replace(partial, target)
    except Exception as err:  # the XML parser's and mwparserfromhell's errors vary; all mean a bad dump
        raise UserError(f"{dump_path}: wikipedia2vec could not read the dump ({type(err).__name__}: {err})") from None
    finally:
        partial.unlink(missing_ok=True)
        Path(str(partial) + "-lock").unlink(missing_ok=True)
    return DumpDB(str(target))
