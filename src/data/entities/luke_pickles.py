"""The LUKE seeds' pickles, read once (only with --allow_pickle) and converted to a mention DB folder.

enwiki_20160305.pkl is the legacy example's WikiLinkDB: a joblib dict of marisa tries, `title_trie`,
`mention_trie` and `data_trie` (a RecordTrie "<IIf": per article title, one (anchor text id, target
title id, link probability) record per link). *_redirects.pkl is a joblib dict {title: target}.
The WikiLinkDB keeps link probabilities but no document counts: converted mentions carry the
pickle's link probability and doc_count -1 (unknown).
"""
import logging
import os
from collections import Counter
from typing import Any

from tqdm import tqdm

from src.data.entities.dump_db import follow_redirects
from src.data.entities.mention_db import MentionOptions, MentionTables, normalize_mention, word_spans
from src.errors import UserError
from src.files import atomic_dir

log = logging.getLogger(__name__)


def load_pickle(path: str, allow_pickle: bool, what: str) -> Any:
    """joblib.load of a seed's pickle, refused without allow_pickle (unpickling runs code from the file)."""
    if not allow_pickle:
        raise UserError(f"{path}: {what} is a pickle, and reading one runs code from the file; pass "
                        "--allow_pickle if you trust it (it is read once and converted to a pickle-free mention DB)")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file; expected {what}")
    import joblib

    try:
        return joblib.load(path)
    except Exception as err:  # joblib/pickle raise many kinds for a file that is not theirs
        raise UserError(f"{path}: not a joblib pickle ({type(err).__name__}: {err}); expected {what}") from None


def convert_luke_pickles(output: str, options: MentionOptions, wiki_link_pickle: str | None,
                         redirects_pickle: str | None, allow_pickle: bool, overwrite: bool = False) -> dict[str, Any]:
    """Mention DB from a WikiLinkDB pickle and/or a redirects pickle (redirects alone: a redirects-only DB,
    e.g. the model dump's enwiki_20181220_redirects.pkl for --model_redirects)."""
    options.check()
    if wiki_link_pickle is None and redirects_pickle is None:
        raise UserError("nothing to convert: expected --luke_pickle and/or --redirects_pickle")
    tables, counts = MentionTables(), Counter()
    if redirects_pickle is not None:
        tables.redirects = _redirects(load_pickle(redirects_pickle, allow_pickle, "a LUKE redirects pickle"),
                                      redirects_pickle)
    if wiki_link_pickle is not None:
        data = load_pickle(wiki_link_pickle, allow_pickle, "a LUKE WikiLinkDB pickle (enwiki_*.pkl)")
        _add_wiki_links(tables, data, wiki_link_pickle, options, counts)
    manifest = {"language": options.language or "en",
                "source": {"kind": "luke_pickle",
                           "wiki_link_pickle": wiki_link_pickle and os.path.abspath(wiki_link_pickle),
                           "redirects_pickle": redirects_pickle and os.path.abspath(redirects_pickle)}}
    with atomic_dir(output, overwrite) as folder:
        written = tables.write(folder, options, manifest, counts)
    log.info("wrote %s: %d mentions, %d article anchors, %d redirects (converted from LUKE pickles)", output,
             counts["mentions"], counts["article_anchors"], counts["redirects"])
    return written


def _redirects(data: Any, path: str) -> dict[str, str]:
    """{title: target} checked, chains followed."""
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise UserError(f"{path}: expected a dict of title -> redirect target title")
    return {source: follow_redirects(source, data) for source in data}


def _add_wiki_links(tables: MentionTables, data: Any, path: str, options: MentionOptions, counts: Counter) -> None:
    """Every (article, anchor text, target, link probability) record of a WikiLinkDB into the tables."""
    if not isinstance(data, dict) or not {"title_trie", "mention_trie", "data_trie"} <= set(data):
        raise UserError(f"{path}: expected a WikiLinkDB (a dict with title_trie, mention_trie and data_trie)")
    title_trie, mention_trie = data["title_trie"], data["mention_trie"]
    for title in title_trie.keys():
        tables.title(title)
    records = data["data_trie"]
    for article, (text_id, title_id, link_prob) in tqdm(records.iteritems(), total=len(records), unit="link",
                                                        desc="converting the WikiLinkDB", disable=None):
        text = normalize_mention(mention_trie.restore_key(text_id))
        if not text:
            counts["empty_anchors"] += 1
            continue
        if len(word_spans(text)) > options.max_mention_length:
            counts["anchors_too_long"] += 1
            continue
        target = title_trie.restore_key(title_id)
        tables.add_link(article, text, tables.redirects.get(target, target))
        index = tables.texts[text]
        tables.given_link_probs[index] = max(float(link_prob), tables.given_link_probs.get(index, 0.0))
        counts["links"] += 1
    counts["pages"] = len(title_trie)
