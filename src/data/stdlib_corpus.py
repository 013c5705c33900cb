"""An English corpus every Python installation carries: the standard library's docstrings.

Each module is one document; its docstrings (module, classes, functions) are split into
sentences, one per line, with a blank line between documents (BERT's plain-text format).
"""
import ast
import logging
import os
import re
import sysconfig
from typing import Iterator, List

logger = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_CODE_LINE = re.compile(r"^\s*(>>>|\.\.\.|[-=~*]{3,}|:\w+:|\$ )")


def stdlib_files() -> List[str]:
    """The standard library's .py files, sorted (tests and site-packages left out)."""
    root = sysconfig.get_paths()["stdlib"]
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "test", "tests",
                                                      "idlelib", "__pycache__", "lib2to3"))
        found += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return found


def docstrings(path: str) -> Iterator[str]:
    """Every docstring of one source file, in source order."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node)
            if text:
                yield text


def sentences(text: str) -> List[str]:
    """Prose sentences of a docstring: code examples and rulers dropped, lines joined."""
    prose = " ".join(line.strip() for line in text.splitlines() if not _CODE_LINE.match(line))
    out = []
    for sentence in _SENTENCE_END.split(" ".join(prose.split())):
        if len(sentence.split()) >= 3:
            out.append(sentence)
    return out


def write_stdlib_corpus(path: str) -> dict:
    """Write the corpus to `path` (atomically); returns document and sentence counts."""
    documents = lines = 0
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for source in stdlib_files():
            doc = [s for text in docstrings(source) for s in sentences(text)]
            if len(doc) >= 2:
                f.write("\n".join(doc) + "\n\n")
                documents += 1
                lines += len(doc)
    os.replace(tmp, path)
    logger.info("stdlib corpus: %d documents, %d sentences -> %s", documents, lines, path)
    return {"documents": documents, "sentences": lines}


def split_heldout(inputs: List[str], train_path: str, heldout_path: str,
                  every: int = 20) -> dict:
    """Stream a corpus (any format create_data reads) into plain-text train and held-out
    files: every `every`-th document is held out."""
    from collections import Counter

    from src.data.corpus import list_files, read_documents
    skipped: Counter = Counter()
    counts = {"train": 0, "heldout": 0}
    with open(train_path + ".tmp", "w", encoding="utf-8") as train, \
            open(heldout_path + ".tmp", "w", encoding="utf-8") as heldout:
        for index, document in enumerate(read_documents(list_files(inputs), skipped)):
            part = "heldout" if index % every == every - 1 else "train"
            (heldout if part == "heldout" else train).write("\n".join(document) + "\n\n")
            counts[part] += 1
    os.replace(train_path + ".tmp", train_path)
    os.replace(heldout_path + ".tmp", heldout_path)
    counts.update({f"skipped_{k}": v for k, v in skipped.items()})
    return counts
