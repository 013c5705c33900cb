"""Corpus readers: BERT text, WikiExtractor, JSON lines, compression, folders, and bad input counted by reason."""
import bz2
import gzip
import json
from collections import Counter

import pytest

from src.data.corpus import Progress, list_files, read_documents, split_sentences
from src.errors import UserError


def _read(paths, **kwargs):
    skipped = Counter()
    return list(read_documents(list_files([str(p) for p in paths]), skipped, **kwargs)), skipped


def test_plain_text_blank_lines_separate_documents(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("First sentence.\nSecond sentence.\n\n\nOther document.\n  \nThird doc.", encoding="utf-8")
    documents, skipped = _read([path])
    assert documents == [["First sentence.", "Second sentence."], ["Other document."], ["Third doc."]]
    assert not skipped


def test_wikiextractor_docs_drop_the_title_line(tmp_path):
    path = tmp_path / "wiki_00"
    path.write_text('<doc id="1" url="u" title="Alan Turing">\nAlan Turing\n\nAlan was a scientist. He was born.\n'
                    '</doc>\n<doc id="2" url="u" title="Haerbin">\nHaerbin\n哈尔滨是一座城市。它很冷。\n</doc>\n',
                    encoding="utf-8")
    documents, _ = _read([path])
    assert documents == [["Alan was a scientist. He was born."], ["哈尔滨是一座城市。它很冷。"]]
    documents, _ = _read([path], split=True)
    assert documents == [["Alan was a scientist.", "He was born."], ["哈尔滨是一座城市。", "它很冷。"]]


def test_json_lines_with_sentence_splitting(tmp_path):
    path = tmp_path / "docs.jsonl"
    lines = [{"text": "One. Two? Three!"}, {"text": "我爱北京。你呢？好的！"}, {"title": "no text"}]
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\nnot json\n",
                    encoding="utf-8")
    documents, skipped = _read([path], split=True)
    assert documents == [["One.", "Two?", "Three!"], ["我爱北京。", "你呢？", "好的！"]]
    assert skipped == Counter({"json_without_text": 1, "bad_json_line": 1})


def test_sentence_splitting_keeps_decimals_and_closing_quotes():
    assert split_sentences("It is 3.14 long. “Yes.” 他说：“好。”然后走了") == [
        "It is 3.14 long.", "“Yes.”", "他说：“好。”", "然后走了"]


def test_compressed_files_and_folders_are_read_in_order(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt.gz").write_bytes(gzip.compress(b"gz one.\n\ngz two.\n"))
    (folder / "sub" / "b.txt.bz2").write_bytes(bz2.compress(b"bz one.\n"))
    (folder / ".hidden").write_text("never read\n")
    documents, _ = _read([folder])
    assert documents == [["gz one."], ["gz two."], ["bz one."]]


def test_bad_input_is_counted_by_reason_not_a_crash(tmp_path):
    (tmp_path / "binary.bin").write_bytes(b"\x00\x01\x02\xff" * 100)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes(b"good line\ncaf\xe9 bad\n")
    (tmp_path / "broken.gz").write_bytes(gzip.compress(b"line one\n" * 1000)[:40])
    (tmp_path / "wiki.txt").write_text('<doc id="1" title="t">\ntext\n', encoding="utf-8")
    documents, skipped = _read([tmp_path])
    assert ["good line"] in documents
    assert skipped["binary_file"] == 1 and skipped["empty_file"] == 1
    assert skipped["non_utf8_line"] == 1 and skipped["unreadable_file"] == 1
    assert skipped["unclosed_doc"] == 1


def test_missing_input_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        list_files([str(tmp_path / "nope.txt")])
    with pytest.raises(UserError, match="no files found"):
        list_files([str(tmp_path)])


def test_format_can_be_forced(tmp_path):
    path = tmp_path / "looks_like_json.txt"
    path.write_text('{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    assert _read([path])[0] == [["a"], ["b"]]
    assert _read([path], fmt="text")[0] == [['{"text": "a"}', '{"text": "b"}']]
    with pytest.raises(UserError, match="--format"):
        _read([path], fmt="xml")


def test_progress_counts_every_file_to_its_size(tmp_path):
    (tmp_path / "a.txt").write_text("one.\n\ntwo.\n" * 500, encoding="utf-8")
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"three.\n" * 5000))
    (tmp_path / "c.bin").write_bytes(b"\x00" * 10)
    files = list_files([str(tmp_path)])
    progress = Progress(sum(path.stat().st_size for path in files))
    assert len(list(read_documents(files, Counter(), progress=progress))) == 502
    assert progress.done == progress.total
