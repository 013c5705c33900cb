"""The mention database: anchor text -> target titles with link counts and link probability, per article
its anchors, and the dump's redirects; stored as marisa tries + numpy arrays + manifest.json (no pickle).

Layout of a mention DB folder (ids are the tries' key ids):
  titles.marisa          every title (pages, redirect sources, link targets)
  redirects.npy          per title id: the id its redirect chain ends at, or -1
  mentions.marisa        normalized anchor texts kept
  mention_stats.npy      per mention id: doc_count (-1 where unknown), total link count
  mention_link_prob.npy  per mention id: link probability
  candidate_offsets.npy  CSR over mention ids into candidate_titles / candidate_counts (most linked first)
  article_offsets.npy    CSR over title ids into article_mentions / article_targets / article_counts
"""
import json
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.errors import UserError

FORMAT = "mention-db"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_ARRAYS = ("redirects", "mention_stats", "mention_link_prob", "candidate_offsets", "candidate_titles",
           "candidate_counts", "article_offsets", "article_mentions", "article_targets", "article_counts")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[^\W{_CJK}]+|\S")  # word-character runs; every other visible character (CJK too) alone


def normalize_mention(text: str) -> str:
    """LUKE's mention normalization: lower case, whitespace runs as one space, stripped."""
    return " ".join(text.lower().split())


def word_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each word: a run of letters/digits, or one other visible character (CJK: one each)."""
    return [match.span() for match in _WORD.finditer(text)]


@dataclass(frozen=True)
class MentionOptions:
    """Which anchors the DB keeps (LUKE's mention DB defaults); language: of the entity titles."""

    min_link_prob: float = 0.01
    min_link_count: int = 1
    max_mention_length: int = 20
    language: str | None = None

    def check(self) -> None:
        """Reject values that keep nothing or mean nothing, naming the option."""
        if not 0.0 <= self.min_link_prob <= 1.0:
            raise UserError(f"--min_link_prob {self.min_link_prob}: expected a value between 0 and 1")
        for name in ("min_link_count", "max_mention_length"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name} {getattr(self, name)}: expected a positive whole number")


@dataclass(frozen=True)
class Anchor:
    """A link of one article: normalized anchor text, target title (redirects resolved), how often."""

    text: str
    title: str
    link_prob: float
    count: int


class MentionDB:
    """A mention DB folder opened for lookups (tries memory-mapped, arrays loaded without pickle)."""

    def __init__(self, folder: str) -> None:
        import marisa_trie

        self.folder = Path(folder)
        self.manifest = read_manifest(folder)
        self.language = self.manifest["language"]
        self._titles = marisa_trie.Trie().mmap(str(self.folder / "titles.marisa"))
        self._mentions = marisa_trie.Trie().mmap(str(self.folder / "mentions.marisa"))
        self._arrays = {name: np.load(self.folder / f"{name}.npy", allow_pickle=False) for name in _ARRAYS}

    def __reduce__(self) -> tuple:
        """Pickled (for worker processes) as its folder: each process maps the files itself."""
        return MentionDB, (str(self.folder),)

    def title_id(self, title: str) -> int | None:
        """The id of a title, None where the DB does not know it."""
        return self._titles.get(title)

    def resolve(self, title: str) -> str:
        """The title a redirect ends at (the title itself where it is no redirect)."""
        index = self._titles.get(title)
        if index is None or self._arrays["redirects"][index] < 0:
            return title
        return self._titles.restore_key(int(self._arrays["redirects"][index]))

    def link_prob(self, text: str) -> float | None:
        """Link probability of a normalized anchor text, None where the DB does not keep the text."""
        index = self._mentions.get(text)
        return None if index is None else float(self._arrays["mention_link_prob"][index])

    def candidates(self, text: str) -> list[tuple[str, int]]:
        """(title, link count) of a normalized anchor text's targets, most linked first."""
        index = self._mentions.get(text)
        if index is None:
            return []
        start, stop = self._arrays["candidate_offsets"][index:index + 2]
        titles, counts = self._arrays["candidate_titles"][start:stop], self._arrays["candidate_counts"][start:stop]
        return [(self._titles.restore_key(int(t)), int(c)) for t, c in zip(titles, counts)]

    def doc_count(self, text: str) -> int | None:
        """Documents containing the normalized text at word boundaries (-1: unknown, None: not kept)."""
        index = self._mentions.get(text)
        return None if index is None else int(self._arrays["mention_stats"][index, 0])

    def article_anchors(self, title: str) -> list[Anchor]:
        """The anchors of one article (its title as given: resolve redirects first); [] for an unknown one."""
        index = self._titles.get(title)
        if index is None:
            return []
        start, stop = self._arrays["article_offsets"][index:index + 2]
        mentions = self._arrays["article_mentions"][start:stop].tolist()
        targets = self._arrays["article_targets"][start:stop].tolist()
        counts = self._arrays["article_counts"][start:stop].tolist()
        link_prob = self._arrays["mention_link_prob"]
        return [Anchor(self._mentions.restore_key(m), self._titles.restore_key(t), float(link_prob[m]), c)
                for m, t, c in zip(mentions, targets, counts)]


def read_manifest(folder: str) -> dict[str, Any]:
    """The manifest of a finished mention DB folder; anything else is a UserError naming the folder."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder}: no {MANIFEST}; expected a folder written by `create_data.py mentions`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{folder}: not a mention DB of format version {FORMAT_VERSION} "
                        "(rebuild it with this version's `create_data.py mentions`)")
    return manifest


class MentionTables:
    """Anchors gathered from a dump or a converted pickle, interned as ids, turned into a mention DB folder.

    Links arrive as (article, normalized text, resolved target) rows, links to no page as texts only
    (they count as links of the text, as in LUKE's mention DB); doc counts (or, for converted
    pickles, link probabilities) per text are set before `write`.
    """

    def __init__(self) -> None:
        self.texts: dict[str, int] = {}
        self.titles: dict[str, int] = {}
        self.redirects: dict[str, str] = {}
        self._rows: list[np.ndarray] = []
        self._pending: list[tuple[int, int, int]] = []
        self.unlinked: Counter = Counter()
        self.doc_counts: np.ndarray | None = None
        self.given_link_probs: dict[int, float] = {}

    def title(self, title: str) -> int:
        """The id of a title, assigned on first sight."""
        return self.titles.setdefault(title, len(self.titles))

    def add_link(self, article: str, text: str, target: str) -> None:
        """One link of an article (text normalized, target redirect-resolved)."""
        self._pending.append((self.title(article), self.texts.setdefault(text, len(self.texts)),
                              self.title(target)))
        if len(self._pending) >= 1 << 20:
            self._flush()

    def add_unlinked(self, text: str) -> None:
        """A link whose target is no page: it counts towards the text's link probability, not as a candidate."""
        self.unlinked[self.texts.setdefault(text, len(self.texts))] += 1

    def link_rows(self) -> np.ndarray:
        """All links so far as an (n, 3) int64 array of (article, text, target) ids."""
        self._flush()
        return np.concatenate(self._rows) if self._rows else np.zeros((0, 3), dtype=np.int64)

    def _flush(self) -> None:
        if self._pending:
            self._rows.append(np.array(self._pending, dtype=np.int64))
            self._pending = []

    def write(self, folder: str, options: MentionOptions, manifest: dict[str, Any], counts: Counter) -> dict[str, Any]:
        """Filter by the options, build tries and arrays, and write them with the manifest into folder."""
        import marisa_trie

        for source, target in self.redirects.items():
            self.title(source), self.title(target)
        rows = self.link_rows()
        texts = np.array(sorted(self.texts, key=self.texts.get), dtype=object)
        titles = np.array(sorted(self.titles, key=self.titles.get), dtype=object)
        pairs, pair_counts = np.unique(rows[:, 1:], axis=0, return_counts=True) if len(rows) else \
            (np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64))
        totals = np.bincount(pairs[:, 0], weights=pair_counts, minlength=len(texts)).astype(np.int64)
        for index, count in self.unlinked.items():
            totals[index] += count
        link_prob, docs = self._link_probs(totals, counts)
        kept_pair = (pair_counts >= options.min_link_count) & (link_prob[pairs[:, 0]] >= options.min_link_prob) \
            & (docs[pairs[:, 0]] != 0)
        counts["candidates_below_min_link_count"] += int((pair_counts < options.min_link_count).sum())
        kept_text = np.zeros(len(texts), dtype=bool)
        kept_text[pairs[kept_pair, 0]] = True
        counts["texts_below_min_link_prob"] += int(((link_prob < options.min_link_prob) & (docs != 0)).sum())
        counts["texts_never_at_word_boundaries"] += int((docs == 0).sum())

        title_trie = marisa_trie.Trie(titles.tolist())
        mention_trie = marisa_trie.Trie(texts[kept_text].tolist())
        title_map = np.array([title_trie[t] for t in titles], dtype=np.int64)
        mention_map = np.full(len(texts), -1, dtype=np.int64)
        mention_map[kept_text] = [mention_trie[t] for t in texts[kept_text]]
        arrays = {"redirects": self._redirect_array(title_trie, len(titles))}
        arrays.update(_mention_arrays(mention_map, pairs[kept_pair], pair_counts[kept_pair], title_map,
                                      link_prob, docs, totals, len(mention_trie)))
        arrays.update(_article_arrays(rows, mention_map, title_map, len(titles)))
        folder_path = Path(folder)
        title_trie.save(str(folder_path / "titles.marisa"))
        mention_trie.save(str(folder_path / "mentions.marisa"))
        for name, values in arrays.items():
            np.save(folder_path / f"{name}.npy", values, allow_pickle=False)
        counts.update({"titles": len(titles), "redirects": len(self.redirects), "anchor_texts_seen": len(texts),
                       "mentions": len(mention_trie), "candidates": int(kept_pair.sum()),
                       "article_anchors": int(len(arrays["article_mentions"]))})
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "options": asdict(options),
                "counts": dict(sorted(counts.items()))}
        tmp = folder_path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, folder_path / MANIFEST)
        return full

    def _link_probs(self, totals: np.ndarray, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
        """Per text: link probability min(1, links / docs) and doc count; given probabilities (pickles) win,
        their doc count being unknown (-1)."""
        docs = np.full(len(totals), -1, dtype=np.int64) if self.doc_counts is None else self.doc_counts
        with np.errstate(divide="ignore", invalid="ignore"):
            link_prob = np.where(docs > 0, np.minimum(1.0, totals / np.maximum(docs, 1)), 0.0)
        for index, value in self.given_link_probs.items():
            link_prob[index] = value
        if self.given_link_probs:
            counts["texts_with_given_link_prob"] += len(self.given_link_probs)
        return link_prob, docs

    def _redirect_array(self, title_trie: Any, size: int) -> np.ndarray:
        """Per title id: its redirect target's id or -1."""
        redirects = np.full(size, -1, dtype=np.int32)
        for source, target in self.redirects.items():
            if source != target:
                redirects[title_trie[source]] = title_trie[target]
        return redirects


def _mention_arrays(mention_map: np.ndarray, pairs: np.ndarray, pair_counts: np.ndarray, title_map: np.ndarray,
                    link_prob: np.ndarray, docs: np.ndarray, totals: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Per-mention stats and the candidate CSR (by mention trie id; most linked first, then by title id)."""
    keep = mention_map >= 0
    stats = np.zeros((size, 2), dtype=np.int64)
    stats[mention_map[keep]] = np.stack([docs[keep], totals[keep]], axis=1)
    probs = np.zeros(size, dtype=np.float64)
    probs[mention_map[keep]] = link_prob[keep]
    mentions, titles = mention_map[pairs[:, 0]], title_map[pairs[:, 1]]
    order = np.lexsort((titles, -pair_counts, mentions))
    offsets = np.zeros(size + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(mentions, minlength=size))
    return {"mention_stats": stats, "mention_link_prob": probs, "candidate_offsets": offsets,
            "candidate_titles": titles[order].astype(np.int32), "candidate_counts": pair_counts[order].astype(np.int32)}


def _article_arrays(rows: np.ndarray, mention_map: np.ndarray, title_map: np.ndarray,
                    size: int) -> dict[str, np.ndarray]:
    """Per article (title trie id): its distinct (mention, target) anchors with counts, CSR-packed."""
    rows = rows[mention_map[rows[:, 1]] >= 0] if len(rows) else rows
    keyed = np.stack([title_map[rows[:, 0]], mention_map[rows[:, 1]], title_map[rows[:, 2]]], axis=1) \
        if len(rows) else np.zeros((0, 3), dtype=np.int64)
    unique, counts = np.unique(keyed, axis=0, return_counts=True)
    offsets = np.zeros(size + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(unique[:, 0], minlength=size))
    return {"article_offsets": offsets, "article_mentions": unique[:, 1].astype(np.int32),
            "article_targets": unique[:, 2].astype(np.int32), "article_counts": counts.astype(np.int32)}
