"""Mention DB: a generated pages-articles dump -> wikipedia2vec DumpDB -> mention DB, checked against link
probabilities and redirects counted by hand; the seeds' pickles converted only with --allow_pickle."""
import bz2
import json
import subprocess
import sys
from pathlib import Path

import joblib
import marisa_trie
import numpy as np
import pytest

from src.data.entities.dump_db import DumpDB, build_dump_db
from src.data.entities.luke_pickles import convert_luke_pickles
from src.data.entities.mention_build import create_mention_db
from src.data.entities.mention_db import Anchor, MentionDB, MentionOptions
from src.errors import UserError
from wiki_dumps import write_dump

ROOT = Path(__file__).resolve().parent.parent
# anchor text -> (times linked, pages containing it at word boundaries), counted by hand from wiki_dumps.PAGES
LINKS_AND_DOCS = {"france": (2, 3), "seine": (1, 2), "the old city": (1, 1), "paris": (3, 4), "troy": (2, 3),
                  "the republic": (1, 1)}


@pytest.fixture(scope="module")
def dump_db(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("wiki")
    return build_dump_db(str(write_dump(folder / "tinywiki-pages-articles.xml.bz2")), str(folder / "wiki.db")).path


@pytest.fixture(scope="module")
def mentions(dump_db, tmp_path_factory) -> MentionDB:
    output = tmp_path_factory.mktemp("mentions") / "db"
    create_mention_db(str(output), MentionOptions(min_link_prob=0.0), dump_db)
    return MentionDB(str(output))


def _create_data(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "create_data.py"), "mentions", *args], capture_output=True,
                          text=True, cwd=ROOT)


def test_dump_db_gives_pages_redirects_and_links(dump_db):
    db = DumpDB(dump_db)
    assert db.language == "en"
    assert sorted(db.titles()) == sorted(["Paris", "France", "Seine", "Paris (mythology)", "Troy", "Parisian"])
    assert db.redirects() == {"Lutetia": "Paris", "French Republic": "France"}
    links = [(link.title, link.text) for paragraph in db.paragraphs("France") for link in paragraph.links]
    assert links == [("Paris", "Paris"), ("Paris (mythology)", "Paris"), ("Troy", "Troy"),
                     ("French Republic", "The republic")]


def test_link_probabilities_equal_hand_counts(mentions):
    for text, (linked, docs) in LINKS_AND_DOCS.items():
        assert mentions.doc_count(text) == docs, text
        assert mentions.link_prob(text) == pytest.approx(linked / docs), text
    assert mentions.link_prob("rouen") is None  # linked once, but to no page: no candidate to keep
    assert mentions.link_prob("parisian") is None  # never an anchor
    assert mentions.manifest["counts"]["links_to_missing_pages"] == 1


def test_candidates_and_redirects_resolved(mentions):
    assert mentions.candidates("paris") == [("Paris", 2), ("Paris (mythology)", 1)]
    assert mentions.candidates("the old city") == [("Paris", 1)]  # [[Lutetia|the old city]] through the redirect
    assert mentions.candidates("the republic") == [("France", 1)]
    assert mentions.resolve("Lutetia") == "Paris" and mentions.resolve("French Republic") == "France"
    assert mentions.resolve("Troy") == "Troy" and mentions.resolve("Nowhere") == "Nowhere"


def test_each_article_keeps_its_anchors(mentions):
    assert sorted(mentions.article_anchors("France"), key=lambda a: (a.text, a.title)) == [
        Anchor("paris", "Paris", 0.75, 1), Anchor("paris", "Paris (mythology)", 0.75, 1),
        Anchor("the republic", "France", 1.0, 1), Anchor("troy", "Troy", pytest.approx(2 / 3), 1)]
    assert {(a.text, a.title) for a in mentions.article_anchors(mentions.resolve("Lutetia"))} == {
        ("france", "France"), ("seine", "Seine"), ("the old city", "Paris")}
    assert mentions.article_anchors("Parisian") == [] and mentions.article_anchors("Nowhere") == []


def test_thresholds_drop_texts_and_candidates(dump_db, tmp_path):
    create_mention_db(str(tmp_path / "p"), MentionOptions(min_link_prob=0.7), dump_db)
    strict = MentionDB(str(tmp_path / "p"))
    kept = {text for text, (linked, docs) in LINKS_AND_DOCS.items() if linked / docs >= 0.7}
    assert {text for text in LINKS_AND_DOCS if strict.link_prob(text) is not None} == kept
    assert strict.manifest["counts"]["texts_below_min_link_prob"] == len(LINKS_AND_DOCS) - len(kept)
    create_mention_db(str(tmp_path / "c"), MentionOptions(min_link_prob=0.0, min_link_count=2), dump_db)
    counted = MentionDB(str(tmp_path / "c"))
    assert counted.candidates("paris") == [("Paris", 2)]
    assert counted.link_prob("seine") is None and counted.candidates("troy") == [("Troy", 2)]


def test_same_db_for_any_number_of_workers(dump_db, mentions, tmp_path):
    create_mention_db(str(tmp_path / "w2"), MentionOptions(min_link_prob=0.0), dump_db, workers=2)
    for name in sorted(p.name for p in mentions.folder.iterdir()):
        assert (tmp_path / "w2" / name).read_bytes() == (mentions.folder / name).read_bytes(), name


def test_cli_builds_the_dump_db_first_and_writes_no_pickle(tmp_path):
    dump = write_dump(tmp_path / "wiki.xml.bz2")
    result = _create_data("--dump", str(dump), "--dump_db", str(tmp_path / "wiki.db"), "--output",
                          str(tmp_path / "db"), "--min_link_prob", "0")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "db" / "manifest.json").read_text())
    assert manifest["source"]["dump_file"].endswith("wiki.xml.bz2") and manifest["language"] == "en"
    assert manifest["counts"]["pages"] == 6 and manifest["counts"]["redirects"] == 2
    for path in (tmp_path / "db").glob("*.npy"):
        np.load(path, allow_pickle=False)
    assert sorted(p.suffix for p in (tmp_path / "db").iterdir()) == [".json", ".marisa", ".marisa"] + [".npy"] * 10


@pytest.mark.parametrize("content", [b"plain text, not a dump\n", bz2.compress(b"<html>not a dump</html>\n")])
def test_a_file_that_is_not_a_dump_is_one_line(tmp_path, content):
    (tmp_path / "bad.xml.bz2").write_bytes(content)
    result = _create_data("--dump", str(tmp_path / "bad.xml.bz2"), "--dump_db", str(tmp_path / "bad.db"),
                          "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "bad.xml.bz2" in result.stderr and "pages-articles" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "bad.db").exists()


def test_a_dump_db_that_is_not_one_is_one_line(tmp_path):
    (tmp_path / "x.db").write_text("not lmdb")
    result = _create_data("--dump_db", str(tmp_path / "x.db"), "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "not a wikipedia2vec DumpDB" in result.stderr and not (tmp_path / "out").exists()


def _seed_pickles(folder: Path) -> tuple[Path, Path]:
    """A WikiLinkDB pickle and a redirects pickle in the legacy LUKE example's layout."""
    title_trie = marisa_trie.Trie(["Paris", "France", "Paris (mythology)", "Troy"])
    mention_trie = marisa_trie.Trie(["Paris", "France", "Troy"])
    records = [("France", (mention_trie["Paris"], title_trie["Paris"], 0.75)),
               ("France", (mention_trie["Paris"], title_trie["Paris (mythology)"], 0.75)),
               ("France", (mention_trie["Troy"], title_trie["Troy"], 0.5)),
               ("Paris", (mention_trie["France"], title_trie["France"], 0.25))]
    data = {"title_trie": title_trie, "mention_trie": mention_trie,
            "data_trie": marisa_trie.RecordTrie("<IIf", records)}
    joblib.dump(data, folder / "enwiki_20160305.pkl")
    joblib.dump({"Lutetia": "Paris", "Paname": "Lutetia"}, folder / "enwiki_20160305_redirects.pkl")
    return folder / "enwiki_20160305.pkl", folder / "enwiki_20160305_redirects.pkl"


def test_seed_pickles_refused_without_the_flag(tmp_path):
    links, redirects = _seed_pickles(tmp_path)
    for option, path in (("--luke_pickle", links), ("--redirects_pickle", redirects)):
        result = _create_data(option, str(path), "--output", str(tmp_path / "out"))
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert "--allow_pickle" in result.stderr and not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="allow_pickle"):
        convert_luke_pickles(str(tmp_path / "out"), MentionOptions(), str(links), None, allow_pickle=False)


def test_seed_pickles_convert_with_the_flag(tmp_path):
    links, redirects = _seed_pickles(tmp_path)
    result = _create_data("--luke_pickle", str(links), "--redirects_pickle", str(redirects), "--allow_pickle",
                          "--output", str(tmp_path / "db"), "--min_link_prob", "0.3")
    assert result.returncode == 0, result.stderr
    converted = MentionDB(str(tmp_path / "db"))
    assert converted.candidates("paris") == [("Paris", 1), ("Paris (mythology)", 1)]
    assert converted.link_prob("paris") == 0.75 and converted.doc_count("paris") == -1
    assert converted.link_prob("france") is None  # 0.25 < --min_link_prob 0.3
    assert converted.resolve("Paname") == "Paris"  # chain Paname -> Lutetia -> Paris followed
    assert sorted((a.text, a.title) for a in converted.article_anchors("France")) == [
        ("paris", "Paris"), ("paris", "Paris (mythology)"), ("troy", "Troy")]
    only_redirects = convert_luke_pickles(str(tmp_path / "r"), MentionOptions(), None, str(redirects), True)
    assert only_redirects["counts"]["redirects"] == 2 and only_redirects["counts"]["mentions"] == 0
