"""Streaming readers for raw pretraining corpora: plain text, WikiExtractor output and JSON lines.

Every reader yields documents as lists of sentences, one file and one line at a time, so memory does
not grow with the corpus. Files it cannot use (binary, empty, unreadable) and lines it cannot use
(non-UTF-8, bad JSON) are counted by reason in a `Counter`, never dropped silently.
"""
import bz2
import gzip
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from src.errors import UserError

FORMATS = ("auto", "text", "wiki", "jsonl")
_SNIFF_BYTES = 8192
_DOC_OPEN = re.compile(r"^<doc(\s[^>]*)?>\s*$")
_DOC_TITLE = re.compile(r'title="([^"]*)"')
_CLOSERS = "”’」』\"'）)"
_SENTENCE_END = re.compile(rf"([。！？!?…]+[{_CLOSERS}]*|\.+[{_CLOSERS}]*(?=\s))\s*")


class Progress:
    """Bytes of input read so far (on disk, so compressed files count by their compressed size)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0


def list_files(inputs: Iterable[str]) -> list[Path]:
    """Expand files and directories (walked, sorted, hidden entries skipped) into a sorted file list."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(_walk(path))
        else:
            raise UserError(f"{item}: no such file or directory (expected a corpus file or folder)")
    if not files:
        raise UserError(f"{', '.join(inputs)}: no files found (expected text, WikiExtractor or JSON lines files)")
    return files


def split_sentences(text: str) -> list[str]:
    """Split text after English (. ! ? before a space) and Chinese (。！？…) sentence punctuation."""
    marked = _SENTENCE_END.sub(lambda m: m.group(1) + "\n", text)
    return [part.strip() for part in marked.split("\n") if part.strip()]


def read_documents(files: list[Path], skipped: Counter, fmt: str = "auto", split: bool = False,
                   progress: Progress | None = None) -> Iterator[list[str]]:
    """Yield each document of each file as a list of sentences; unusable input is counted in `skipped`."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    for path in files:
        start = progress.done if progress else 0
        yield from _read_file(path, skipped, fmt, split, progress)
        if progress:
            progress.done = start + _size(path)


def _size(path: Path) -> int:
    """A file's size on disk (0 if it vanished meanwhile)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _walk(root: Path) -> list[Path]:
    """All non-hidden files under root, in a stable order."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(folder) / name for name in sorted(names) if not name.startswith("."))
    return found


def _read_file(path: Path, skipped: Counter, fmt: str, split: bool, progress: Progress | None) -> Iterator[list[str]]:
    """Documents of one file; a binary, empty or unreadable file is counted and skipped."""
    try:
        with open(path, "rb") as raw:
            with _decompressed(path, raw) as stream:
                head = stream.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
                if not head:
                    skipped["empty_file"] += 1
                    return
                if b"\x00" in head:
                    skipped["binary_file"] += 1
                    return
                lines = _decoded_lines(stream, raw, skipped, progress)
                kind = _sniff(head) if fmt == "auto" else fmt
                reader = {"text": _text_documents, "wiki": _wiki_documents, "jsonl": _json_documents}[kind]
                for document in reader(lines, skipped):
                    sentences = _split_all(document) if split else document
                    if sentences:
                        yield sentences
                    else:
                        skipped["empty_document"] += 1
    except (OSError, EOFError):
        skipped["unreadable_file"] += 1


def _decompressed(path: Path, raw: BinaryIO) -> BinaryIO:
    """A buffered binary stream of the file's contents, decompressing .gz and .bz2."""
    if path.suffix == ".gz":
        return gzip.GzipFile(fileobj=raw)
    if path.suffix == ".bz2":
        return bz2.BZ2File(raw)
    return open(raw.fileno(), "rb", closefd=False)


def _decoded_lines(stream: BinaryIO, raw: BinaryIO, skipped: Counter, progress: Progress | None) -> Iterator[str]:
    """UTF-8 lines without their line ends; a line that is not valid UTF-8 is counted and skipped."""
    start = progress.done if progress else 0
    for number, line in enumerate(stream):
        try:
            yield line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            skipped["non_utf8_line"] += 1
        if progress and number % 1024 == 0:
            progress.done = start + raw.tell()


def _sniff(head: bytes) -> str:
    """Guess a file's format from its first non-blank line."""
    first = next((line.strip() for line in head.splitlines() if line.strip()), b"")
    if first.startswith(b"<doc"):
        return "wiki"
    if first.startswith(b"{"):
        try:
            if isinstance(json.loads(first), dict):
                return "jsonl"
        except ValueError:
            pass
    return "text"


def _text_documents(lines: Iterable[str], skipped: Counter) -> Iterator[list[str]]:
    """BERT's format: one sentence per line, a blank line between documents."""
    document: list[str] = []
    for line in lines:
        line = line.strip()
        if line:
            document.append(line)
        elif document:
            yield document
            document = []
    if document:
        yield document


def _wiki_documents(lines: Iterable[str], skipped: Counter) -> Iterator[list[str]]:
    """WikiExtractor's `<doc ...>` blocks: one paragraph per line; the repeated title line is dropped."""
    document: list[str] | None = None
    title = None
    for line in lines:
        stripped = line.strip()
        if _DOC_OPEN.match(stripped):
            if document is not None:
                skipped["unclosed_doc"] += 1
            match = _DOC_TITLE.search(stripped)
            document, title = [], match.group(1) if match else None
        elif stripped == "</doc>":
            if document is not None:
                yield document
            document = None
        elif document is None:
            if stripped:
                skipped["line_outside_doc"] += 1
        elif stripped and (document or stripped != title):
            document.append(stripped)
    if document is not None:
        skipped["unclosed_doc"] += 1


def _json_documents(lines: Iterable[str], skipped: Counter) -> Iterator[list[str]]:
    """JSON lines with a "text" string per document; its lines are its sentences."""
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped["bad_json_line"] += 1
            continue
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            skipped["json_without_text"] += 1
            continue
        yield [part.strip() for part in text.splitlines() if part.strip()]


def _split_all(document: list[str]) -> list[str]:
    """Split every line of a document into sentences."""
    return [sentence for line in document for sentence in split_sentences(line)]
