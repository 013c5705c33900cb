"""Entity linking as LUKE does it for SQuAD: an article's anchors, matched greedily over sub-word tokens.

Per article: its title through the mention DB's redirects, its anchors with link probability >=
min_mention_link_prob, texts pointing to more than one title dropped (ambiguous). Per text (question
or context): from each word-start token, the longest anchor text (lower-cased) that ends at a word
boundary, at most max_mention_length tokens, wins; scanning resumes after it. Its title goes
through the model dump's redirects and is kept only where the entity vocabulary has it. A word
starts at the text's first token, after whitespace, and at or after punctuation.
"""
import unicodedata
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.data.entities.mention_db import MentionDB
from src.data.entities.vocab import EntityVocab

_SPACES = {code: " " for code in range(0x3001) if chr(code).isspace()}
_BMP = 0x10000
_PUNCTUATION: list[np.ndarray] = []  # filled on first use: per BMP code point, whether it is punctuation


@dataclass(frozen=True)
class EntityOptions:
    """LUKE's SQuAD linking settings (the legacy example's defaults)."""

    max_entity_length: int = 128
    max_mention_length: int = 30
    min_mention_link_prob: float = 0.01


@dataclass(frozen=True)
class Mention:
    """A linked span of a text: tokens [first, stop) and the entity id."""

    first: int
    stop: int
    entity_id: int


@dataclass
class _Article:
    """One article's usable anchors: a trie of their texts, text -> entity id (None: not in the vocab), the
    texts' first two characters (a cheap test before the trie), and what was left out of them."""

    trie: Any
    entity_of: dict[str, int | None]
    heads: frozenset[str]
    counts: Counter


def article_title(title: str) -> str:
    """A SQuAD article title as a Wikipedia title: percent-decoded, underscores as spaces, first letter upper."""
    title = urllib.parse.unquote(title.replace("_", " ")).strip()
    return title[:1].upper() + title[1:]


def lowered(text: str) -> str:
    """text lower-cased with every whitespace character as a space, keeping its length (so offsets hold)."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(char.lower()[:1] for char in text)
    return low.translate(_SPACES)


@dataclass
class _Tokens:
    """Many texts' tokens laid end to end: character spans into the joined text, word starts, word ends."""

    lowered: str
    spans: np.ndarray
    first_token: np.ndarray
    starts: np.ndarray
    ends: dict[int, int]


def _tokens(texts: list[str], spans: list[np.ndarray]) -> _Tokens:
    """Join the texts (and their tokens' [start, end) characters, whitespace trimmed) and mark word edges.

    A word starts at a text's first token, after whitespace, and at or after punctuation; a
    whitespace-only token (empty once trimmed, as BPE's lone 'Ġ') starts nothing, the token after it does.
    A word ends at a non-empty token followed by a word start, an empty token or the text's end.
    """
    lengths = np.array([len(text) for text in texts], dtype=np.int64)
    counts = np.array([len(rows) for rows in spans], dtype=np.int64)
    joined = "".join(texts)
    flat = (np.concatenate(spans) if len(spans) else np.zeros((0, 2), dtype=np.int64)).astype(np.int64) \
        + np.repeat(np.cumsum(lengths) - lengths, counts)[:, None]
    first_token = np.cumsum(counts) - counts
    opens = np.zeros(len(flat), dtype=bool)
    opens[first_token[counts > 0]] = True
    begin, end = flat[:, 0], flat[:, 1]
    empty = begin >= end
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    last = max(len(codes) - 1, 0)
    starts = ~empty
    if len(flat) > 1:
        starts[1:] &= (opens[1:] | (begin[1:] > end[:-1]) | empty[:-1]
                       | _is_punctuation(codes[np.minimum(begin[1:], last)])
                       | _is_punctuation(codes[np.clip(end[:-1] - 1, 0, last)]))
    closes = np.append(opens[1:], True)
    boundary = ~empty & (closes | np.append(starts[1:] | empty[1:], True))
    ends = dict(zip(end[boundary].tolist(), np.flatnonzero(boundary).tolist()))
    return _Tokens(lowered(joined), flat, first_token, starts, ends)


def _is_punctuation(codes: np.ndarray) -> np.ndarray:
    """ASCII symbols and Unicode punctuation (BERT's tokenizer's and LUKE's linker's rule), per code point."""
    if not _PUNCTUATION:
        _PUNCTUATION.append(np.array([33 <= c <= 47 or 58 <= c <= 64 or 91 <= c <= 96 or 123 <= c <= 126
                                      or unicodedata.category(chr(c)).startswith("P") for c in range(_BMP)]))
    found = _PUNCTUATION[0][np.minimum(codes, _BMP - 1)] & (codes < _BMP)
    for index in np.flatnonzero(codes >= _BMP):
        found[index] = unicodedata.category(chr(int(codes[index]))).startswith("P")
    return found


class EntityLinker:
    """Finds the mentions of an article's anchors in its questions and contexts, counting what it drops."""

    def __init__(self, mentions: MentionDB, vocab: EntityVocab, options: EntityOptions,
                 model_redirects: MentionDB | None = None) -> None:
        self.mentions, self.vocab, self.options = mentions, vocab, options
        self.model_redirects = model_redirects or mentions
        self.language = mentions.language
        self._articles: dict[str, _Article] = {}

    def __reduce__(self) -> tuple:
        """Pickled (for worker processes) as its inputs; the article cache is rebuilt where it is used."""
        return EntityLinker, (self.mentions, self.vocab, self.options, self.model_redirects)

    def article(self, title: str) -> _Article:
        """The usable anchors of a SQuAD article (cached per title)."""
        if title not in self._articles:
            self._articles[title] = self._load_article(title)
        return self._articles[title]

    def _load_article(self, title: str) -> _Article:
        import marisa_trie

        resolved = self.mentions.resolve(article_title(title))
        anchors = self.mentions.article_anchors(resolved)
        counts = Counter(articles=1, articles_without_anchors=int(not anchors))
        titles: dict[str, set[str]] = {}
        for anchor in anchors:
            if anchor.link_prob < self.options.min_mention_link_prob:
                counts["anchors_below_min_link_prob"] += 1
            else:
                titles.setdefault(anchor.text, set()).add(anchor.title)
        counts["ambiguous_anchor_texts"] += sum(len(targets) > 1 for targets in titles.values())
        entity_of = {text: self._entity_id(targets.pop()) for text, targets in titles.items() if len(targets) == 1}
        return _Article(marisa_trie.Trie(entity_of), entity_of, frozenset(text[:2] for text in entity_of), counts)

    def article_counts(self, titles: list[str]) -> Counter:
        """Over the distinct articles: how many, how many have no anchors, anchors left out by reason."""
        return sum((self.article(title).counts for title in dict.fromkeys(titles)), Counter())

    def _entity_id(self, title: str) -> int | None:
        """The vocabulary id of a title after the model dump's redirects, None where the vocabulary lacks it."""
        return self.vocab.get(self.model_redirects.resolve(title), self.language)

    def detect(self, articles: list[_Article], texts: list[str], spans: list[np.ndarray],
               counts: Counter) -> list[list[Mention]]:
        """Per text (with its article and tokens' character spans): greedy longest-first anchor mentions;
        counts gets how many were found and how many dropped for a title outside the vocabulary."""
        tokens, limit = _tokens(texts, spans), self.options.max_mention_length
        begins, ends, low = tokens.spans[:, 0].tolist(), tokens.ends, tokens.lowered
        stops = np.append(tokens.first_token[1:], len(tokens.spans))
        text_stop = np.repeat(stops, np.diff(np.append(tokens.first_token, len(tokens.spans))))
        reach = tokens.spans[np.minimum(np.arange(len(tokens.spans)) + limit, text_stop) - 1, 1].tolist() \
            if len(tokens.spans) else []
        bounds = np.searchsorted(np.flatnonzero(tokens.starts), np.append(tokens.first_token, len(tokens.spans)))
        start_list = np.flatnonzero(tokens.starts).tolist()
        found = []
        for index, article in enumerate(articles):
            mentions, resume, offset = [], 0, int(tokens.first_token[index])
            heads, prefixes, entity_of = article.heads, article.trie.prefixes, article.entity_of
            for first in start_list[bounds[index]:bounds[index + 1]] if entity_of else ():
                begin = begins[first]
                if first < resume or (low[begin:begin + 2] not in heads and low[begin] not in heads):
                    continue
                for key in reversed(prefixes(low[begin:reach[first]])):  # marisa lists prefixes shortest first
                    last = ends.get(begin + len(key))
                    if last is not None and first <= last < first + limit:
                        resume = last + 1
                        mentions.append((first - offset, last + 1 - offset, entity_of[key]))
                        break
            counts["mentions_found"] += len(mentions)
            kept = [Mention(*mention) for mention in mentions if mention[2] is not None]
            counts["dropped_not_in_entity_vocab"] += len(mentions) - len(kept)
            found.append(kept)
        return found
