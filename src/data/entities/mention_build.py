"""Building a mention DB from a wikipedia2vec DumpDB: two passes over its pages, in worker processes.

Pass 1 collects every link (normalized anchor text, target through redirects, its article); pass 2
counts, per anchor text, the pages whose text contains it at word boundaries. Link probability =
min(1, times the text is a link / pages containing it), as wikipedia2vec's and LUKE's mention DBs
compute it. Pages are split into fixed chunks merged in order, so the output is the same for any
number of workers.
"""
import logging
import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from src.data.entities.dump_db import DumpDB, build_dump_db
from src.data.entities.mention_db import MentionOptions, MentionTables, normalize_mention, word_spans
from src.errors import UserError
from src.files import atomic_dir

log = logging.getLogger(__name__)
CHUNK_PAGES = 200
_WORKER: dict[str, Any] = {}


def create_mention_db(output: str, options: MentionOptions, dump_db: str | None = None, dump: str | None = None,
                      workers: int = 1, overwrite: bool = False) -> dict[str, Any]:
    """Mention DB folder from a DumpDB (built first from `dump`, a pages-articles .xml.bz2, when given)."""
    options.check()
    if workers < 1:
        raise UserError(f"--workers {workers}: expected a positive number of processes")
    if dump_db is None:
        raise UserError("--dump_db: expected the DumpDB to read (with --dump: the DumpDB file to build)")
    db = build_dump_db(dump, dump_db, workers, overwrite) if dump else DumpDB(dump_db)
    tables, counts = MentionTables(), Counter()
    tables.redirects = db.redirects()
    titles = list(db.titles())
    pages = set(titles)
    for title in titles:
        tables.title(title)
    for article, links, skipped in _run(_chunk_links, titles, db, options, None, workers, "links (1/2)"):
        counts.update(skipped)
        for text, target in links:
            target = tables.redirects.get(target, target)
            if target in pages:
                tables.add_link(article, text, target)
            else:
                tables.add_unlinked(text)
                counts["links_to_missing_pages"] += 1
        counts["links"] += len(links)
    counts["pages"] = len(titles)
    tables.doc_counts = _doc_counts(tables, titles, db, options, workers)
    manifest = {"language": options.language or db.language,
                "source": {"kind": "dumpdb", "dump_db": os.path.abspath(db.path), "dump_file": db.dump_file,
                           "dump_language": db.language}}
    with atomic_dir(output, overwrite) as folder:
        written = tables.write(folder, options, manifest, counts)
    log.info("wrote %s: %d mentions, %d candidates, %d article anchors from %d pages (%s)", output,
             counts["mentions"], counts["candidates"], counts["article_anchors"], len(titles), db.dump_file)
    return written


def _doc_counts(tables: MentionTables, titles: list[str], db: DumpDB, options: MentionOptions,
                workers: int) -> np.ndarray:
    """Per anchor text id: how many pages contain the text at word boundaries (pass 2)."""
    import marisa_trie

    trie = marisa_trie.Trie(tables.texts)
    found: Counter = Counter()
    for _, names, _ in _run(_chunk_occurrences, titles, db, options, trie.tobytes(), workers,
                            "occurrences (2/2)"):
        found.update(names)
    docs = np.zeros(len(tables.texts), dtype=np.int64)
    for name, count in found.items():
        docs[tables.texts[name]] = count
    return docs


def _run(work: Callable[[list[str]], list[tuple[str, Any, Counter]]], titles: list[str], db: DumpDB,
         options: MentionOptions, trie_bytes: bytes | None, workers: int,
         desc: str) -> Iterator[tuple[str, Any, Counter]]:
    """Per page (in title order): work's result, computed by chunks here or in a spawn pool (LMDB allows
    one open environment per file and process, so this process reuses `db`)."""
    chunks = [titles[i:i + CHUNK_PAGES] for i in range(0, len(titles), CHUNK_PAGES)]
    with tqdm(total=len(titles), unit="page", desc=f"mention DB {desc}", disable=None) as bar:
        if workers == 1:
            _set_worker(db, options.max_mention_length, trie_bytes)
            yield from _progress(map(work, chunks), bar)
            return
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker,
                          initargs=(db.path, options.max_mention_length, trie_bytes)) as pool:
            yield from _progress(pool.imap(work, chunks), bar)


def _progress(results: Iterator[list[tuple[str, Any, Counter]]], bar: tqdm) -> Iterator[tuple[str, Any, Counter]]:
    """Flatten chunk results, advancing the bar by pages."""
    for chunk in results:
        yield from chunk
        bar.update(len(chunk))


def _init_worker(db_path: str, max_mention_length: int, trie_bytes: bytes | None) -> None:
    """Worker process start: Ctrl-C left to the parent, the DumpDB opened once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_worker(DumpDB(db_path), max_mention_length, trie_bytes)


def _set_worker(db: DumpDB, max_mention_length: int, trie_bytes: bytes | None) -> None:
    """What the chunk functions read: the DumpDB, the word limit, pass 2's anchor-text trie."""
    import marisa_trie

    _WORKER.update(db=db, max_words=max_mention_length,
                   trie=marisa_trie.Trie().frombytes(trie_bytes) if trie_bytes is not None else None)


def _chunk_links(titles: list[str]) -> list[tuple[str, list[tuple[str, str]], Counter]]:
    """Pass 1 on a chunk: per page its links as (normalized anchor text, target as written)."""
    results = []
    for title, paragraphs in _WORKER["db"].pages(titles):
        links, skipped = [], Counter()
        for paragraph in paragraphs:
            for link in paragraph.links:
                text = normalize_mention(link.text)
                if not text:
                    skipped["empty_anchors"] += 1
                elif len(word_spans(text)) > _WORKER["max_words"]:
                    skipped["anchors_too_long"] += 1
                else:
                    links.append((text, link.title))
        results.append((title, links, skipped))
    return results


def _chunk_occurrences(titles: list[str]) -> list[tuple[str, set[str], Counter]]:
    """Pass 2 on a chunk: per page the anchor texts its paragraphs contain at word boundaries."""
    return [(title, {name for paragraph in paragraphs for name in occurrences(paragraph.text, _WORKER["trie"],
                                                                             _WORKER["max_words"])}, Counter())
            for title, paragraphs in _WORKER["db"].pages(titles)]


def occurrences(text: str, trie: Any, max_words: int) -> Iterator[str]:
    """Every trie key found in the normalized text starting at a word start and ending at a word end."""
    text = normalize_mention(text)
    spans = word_spans(text)
    ends = {end for _, end in spans}
    for index, (start, _) in enumerate(spans):
        stop = spans[min(index + max_words, len(spans)) - 1][1]
        for name in trie.prefixes(text[start:stop]):
            if start + len(name) in ends:
                yield name
