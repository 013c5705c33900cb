"""Pretraining data: masking statistics, whole-word masking, NSP/SOP/FULL-SENTENCES segments, MindRecord I/O.

Every corpus and vocabulary is generated here. The "marker" vocabulary has one token per (document,
sentence), written `d3s7`, so each token says where it came from and segment structure can be checked.
"""
import bz2
import gzip
import json
import logging
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import jieba
import numpy as np
import pytest

from src.data import mindrecord
from src.data.pretraining import records
from src.data.pretraining.instances import PretrainOptions, Segments, load_builder, truncate_pair
from src.data.pretraining.masking import MaskingSpec, _choose_tokens, _choose_words, mask_tokens
from src.data.pretraining.records import (create_pretraining_data, create_pretraining_dataset, read_manifest,
                                          read_schema_version)
from src.data.vocab import train_vocab
from src.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "quin", "zel", "bra", "dun"]
CHINESE_WORDS = ["哈尔滨", "北京", "我们", "喜欢", "冬天", "城市", "美丽", "非常", "寒冷", "大学", "学生", "图书馆"]
jieba.setLogLevel(logging.WARNING)


def _write_corpus(path: Path, documents: list[list[str]]) -> Path:
    path.write_text("\n\n".join("\n".join(doc) for doc in documents) + "\n", encoding="utf-8")
    return path


def _marker_documents(count: int = 40, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [[" ".join([f"d{d}s{s}"] * rng.randint(2, 9)) for s in range(rng.randint(1, 12))] for d in range(count)]


def _english_documents(count: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(300)]
    return [[" ".join(rng.choice(words) for _ in range(rng.randint(4, 18))) + " ."
             for _ in range(rng.randint(2, 10))] for _ in range(count)]


def _chinese_documents(count: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        sentences = []
        while len(sentences) < rng.randint(2, 6):
            words = [rng.choice(CHINESE_WORDS) for _ in range(rng.randint(3, 7))]
            sentence = "".join(words) + "。"
            if jieba.lcut(sentence) == words + ["。"]:
                sentences.append(sentence)
        documents.append(sentences)
    return documents


@pytest.fixture(scope="module")
def marker(tmp_path_factory):
    folder = tmp_path_factory.mktemp("marker")
    documents = _marker_documents()
    tokens = sorted({token for doc in documents for sentence in doc for token in sentence.split()})
    (folder / "vocab.txt").write_text("\n".join(SPECIALS + tokens) + "\n", encoding="utf-8")
    return folder, documents


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    folder = tmp_path_factory.mktemp("english")
    documents = _english_documents(400)
    corpus = _write_corpus(folder / "corpus.txt", documents)
    sizes = {"wordpiece": 120, "bpe": 320, "sentencepiece": 120}
    models = {kind: train_vocab([str(corpus)], str(folder / kind), kind, size, min_frequency=1)
              for kind, size in sizes.items()}
    return folder, documents, models


@pytest.fixture(scope="module")
def chinese(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chinese")
    documents = _chinese_documents(200)
    corpus = _write_corpus(folder / "corpus.txt", documents)
    train_vocab([str(corpus)], str(folder / "model"), "wordpiece", 200, min_frequency=1)
    return folder, documents


def _build(model_dir, documents, **options):
    builder = load_builder(str(model_dir), PretrainOptions(**options))
    return builder, builder.build(0, documents)


def _segments(row_ids, row_segments, sep_id):
    """Segment A and B token ids of one (unmasked) row."""
    ids = [int(i) for i in row_ids]
    first_sep = ids.index(sep_id)
    second_sep = first_sep + 1 + ids[first_sep + 1:].index(sep_id)
    assert row_segments[1:first_sep + 1].sum() == 0 and row_segments[first_sep + 1:second_sep + 1].all()
    return ids[1:first_sep], ids[first_sep + 1:second_sep]


def _origin(tokenizer, ids):
    """(document, sentence) of each marker token."""
    return [tuple(int(part) for part in token[1:].split("s")) for token in tokenizer.convert_ids_to_tokens(ids)]


def test_masking_statistics(english):
    _, documents, models = english
    builder, result = _build(models["wordpiece"].source, documents, max_seq_length=64, max_predictions_per_seq=20,
                             dupe_factor=3)
    columns, spec = result.columns, builder.spec
    weights = columns["masked_lm_weights"]
    counts = weights.sum(axis=1).astype(int)
    positions, originals = columns["masked_lm_positions"], columns["masked_lm_ids"]
    rows = np.repeat(np.arange(len(counts)), counts)
    flat_positions = np.concatenate([positions[r, :c] for r, c in enumerate(counts)])
    flat_originals = np.concatenate([originals[r, :c] for r, c in enumerate(counts)])
    originals_in_place = columns["input_ids"].copy()
    originals_in_place[rows, flat_positions] = flat_originals
    maskable = ((columns["input_mask"] == 1) & ~np.isin(originals_in_place, spec.special_ids)).sum()
    assert len(flat_positions) > 10_000
    assert abs(counts.sum() / maskable - 0.15) < 0.01
    now = columns["input_ids"][rows, flat_positions]
    shares = [np.mean(now == spec.mask_id), np.mean(now == flat_originals)]
    assert abs(shares[0] - 0.8) < 0.02 and abs(shares[1] - 0.1) < 0.02 and abs(1 - sum(shares) - 0.1) < 0.02
    assert not np.isin(flat_originals, spec.special_ids).any()
    assert not np.isin(now[now != spec.mask_id], spec.special_ids).any()
    assert (columns["input_mask"][rows, flat_positions] == 1).all()
    for row, count in enumerate(counts):
        assert (np.diff(positions[row, :count]) > 0).all()
        assert (weights[row, :count] == 1).all() and (weights[row, count:] == 0).all()
        assert (positions[row, count:] == 0).all() and (originals[row, count:] == 0).all()
    assert result.counts["masked_tokens"] == counts.sum()


def test_predictions_are_capped(english):
    _, documents, models = english
    _, result = _build(models["wordpiece"].source, documents[:50], max_seq_length=128, max_predictions_per_seq=3,
                       dupe_factor=1, short_seq_prob=0.0)
    counts = result.columns["masked_lm_weights"].sum(axis=1)
    assert counts.max() == 3 and result.columns["masked_lm_positions"].shape[1] == 3


def test_mask_tokens_never_touches_special_tokens():
    spec = MaskingSpec(4, np.array([0, 1, 2, 3, 4]), np.arange(5, 50), 0.5, 10)
    ids = np.array([2, 10, 11, 3, 12, 13, 3, 0, 0])
    masked, positions, labels, weights = mask_tokens(ids, np.ones(9, dtype=bool), spec, np.random.default_rng(0))
    chosen = positions[weights == 1]
    assert set(chosen) <= {1, 2, 4, 5} and len(chosen) == 2
    assert (masked[[0, 3, 6, 7, 8]] == ids[[0, 3, 6, 7, 8]]).all()


def _words(tokens, is_start):
    """Maximal runs: a word starts at a word-start token, after a special token, or a sentence's first token."""
    words, current = [], []
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else ""
        if token in ("[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>") or is_start(token, previous) or not current:
            if current:
                words.append(current)
            current = [] if token in ("[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>") else [index]
        else:
            current.append(index)
    return words + ([current] if current else [])


@pytest.mark.parametrize("kind, is_start", [("wordpiece", lambda t, _: not t.startswith("##")),
                                            ("bpe", lambda t, previous: t.startswith("Ġ") or previous == "Ġ."),
                                            ("sentencepiece", lambda t, _: t.startswith("▁"))])
def test_whole_word_masking_never_splits_a_word(english, kind, is_start):
    _, documents, models = english
    builder, result = _build(models[kind].source, documents[:150], max_seq_length=64, max_predictions_per_seq=12,
                             dupe_factor=2, whole_word_mask=True, masking="dynamic")
    tokenizer, columns = builder.tokenizer, result.columns
    rng = np.random.default_rng(0)
    multi_piece = masked_total = 0
    for row in range(len(columns["input_ids"])):
        ids = columns["input_ids"][row]
        _, positions, _, weights = mask_tokens(ids, columns["word_starts"][row], builder.spec, rng)
        masked = set(positions[weights == 1].tolist())
        masked_total += len(masked)
        for word in _words(tokenizer.convert_ids_to_tokens(ids.tolist()), is_start):
            assert masked.isdisjoint(word) or masked.issuperset(word), (kind, word, masked)
            multi_piece += len(word) > 1 and masked.issuperset(word)
    assert multi_piece > 100
    maskable = ((columns["input_mask"] == 1) & ~np.isin(columns["input_ids"], builder.spec.special_ids)).sum()
    assert 0.13 < masked_total / maskable < 0.16


def test_chinese_whole_word_masking_follows_jieba(chinese):
    folder, documents = chinese
    builder, result = _build(folder / "model", documents, max_seq_length=64, max_predictions_per_seq=10,
                             dupe_factor=4, chinese_wwm=True, objective="none")
    columns, tokenizer = result.columns, builder.tokenizer
    city = tokenizer.convert_tokens_to_ids(list("哈尔滨"))
    city_masked = 0
    for row in range(len(columns["input_ids"])):
        ids = columns["input_ids"][row].copy()
        count = int(columns["masked_lm_weights"][row].sum())
        positions = columns["masked_lm_positions"][row, :count]
        ids[positions] = columns["masked_lm_ids"][row, :count]
        masked = set(positions.tolist())
        tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
        index, end = 1, int(columns["input_mask"][row].sum()) - 1
        while index < end:
            if tokens[index] == "[SEP]":
                index += 1
                continue
            stop = tokens.index("。", index) + 1
            for word in jieba.lcut("".join(tokens[index:stop])):
                span = set(range(index, index + len(word)))
                assert masked.isdisjoint(span) or masked.issuperset(span), (word, tokens[index:stop])
                index += len(word)
        for start in range(1, len(ids) - 2):
            if ids[start:start + 3].tolist() == city:
                span = {start, start + 1, start + 2}
                assert masked.isdisjoint(span) or masked.issuperset(span)
                city_masked += masked.issuperset(span)
    assert city_masked > 20


def test_nsp_labels_balanced_and_random_next_from_another_document(marker):
    folder, documents = marker
    builder, result = _build(folder, documents, max_seq_length=40, dupe_factor=5, masking="dynamic")
    columns = result.columns
    labels = columns["next_sentence_labels"][:, 0]
    assert 0.45 < labels.mean() < 0.6
    for row in range(len(labels)):
        first, second = _segments(columns["input_ids"][row], columns["segment_ids"][row], builder.sep_id)
        a, b = _origin(builder.tokenizer, first), _origin(builder.tokenizer, second)
        assert len({doc for doc, _ in a}) == 1 and len({doc for doc, _ in b}) == 1
        if labels[row]:
            assert a[0][0] != b[0][0]
        else:
            assert a[0][0] == b[0][0] and a[-1][1] < b[0][1]
        assert len(first) + len(second) + 3 <= 40 and columns["input_mask"][row].sum() == len(first) + len(second) + 3


def test_sop_pairs_are_really_swapped(marker):
    folder, documents = marker
    builder, result = _build(folder, documents, max_seq_length=40, dupe_factor=5, objective="sop", masking="dynamic")
    labels = result.columns["next_sentence_labels"][:, 0]
    assert 0.4 < labels.mean() < 0.6
    for row in range(len(labels)):
        first, second = _segments(result.columns["input_ids"][row], result.columns["segment_ids"][row],
                                  builder.sep_id)
        a, b = _origin(builder.tokenizer, first), _origin(builder.tokenizer, second)
        assert len({doc for doc, _ in a + b}) == 1
        assert (a[0][1] > b[-1][1]) if labels[row] else (a[-1][1] < b[0][1])
    assert result.skipped["single_sentence_document"] == sum(len(doc) == 1 for doc in documents) * 5


def test_full_sentences_pack_whole_sentences_across_documents(marker):
    folder, documents = marker
    builder, result = _build(folder, documents, max_seq_length=32, dupe_factor=1, objective="none", masking="dynamic")
    columns, tokenizer = result.columns, builder.tokenizer
    assert not columns["segment_ids"].any() and not columns["next_sentence_labels"].any()
    seen = Counter()
    crossing = 0
    for row in range(len(columns["input_ids"])):
        ids = columns["input_ids"][row][columns["input_mask"][row] == 1].tolist()
        assert ids[0] == builder.cls_id and ids[-1] == builder.sep_id and len(ids) <= 32
        body = [i for i in ids[1:-1] if i != builder.sep_id]
        seen.update(_origin(tokenizer, body))
        crossing += len({doc for doc, _ in _origin(tokenizer, body)}) > 1
    expected = Counter((d, s) for d, doc in enumerate(documents) for s, sentence in enumerate(doc)
                       for _ in sentence.split())
    assert seen == expected and crossing > 10


def test_truncation_trims_the_longer_side_from_either_end():
    fronts = backs = 0
    for seed in range(50):
        first, second = Segments(list(range(10)), [True] * 10), Segments(list(range(100, 104)), [True] * 4)
        assert truncate_pair(first, second, 8, np.random.default_rng(seed))
        assert len(first) == 4 and second.ids == [100, 101, 102, 103]
        assert first.ids == list(range(first.ids[0], first.ids[0] + 4))
        fronts += first.ids[0] > 0
        backs += first.ids[-1] < 9
    assert fronts > 10 and backs > 10


def test_round_trip_and_manifest(english, tmp_path):
    folder, documents, models = english
    corpus = _write_corpus(tmp_path / "c.txt", documents[:120])
    options = PretrainOptions(max_seq_length=48, max_predictions_per_seq=8, dupe_factor=2, chunk_documents=50)
    manifest = create_pretraining_data([str(corpus)], str(models["wordpiece"].source), str(tmp_path / "out"),
                                       options, shard_size=300)
    builder = load_builder(str(models["wordpiece"].source), options)
    expected = [builder.build(i, documents[start:min(start + 50, 120)]) for i, start in enumerate(range(0, 120, 50))]
    dataset = create_pretraining_dataset(str(tmp_path / "out"), shuffle=False)
    rows = list(dataset.create_dict_iterator(output_numpy=True, num_epochs=1))
    for name in records.PRETRAINING_COLUMNS:
        written = np.concatenate([result.columns[name] for result in expected])
        assert np.array_equal(np.stack([row[name] for row in rows]), written), name
    assert manifest == read_manifest(str(tmp_path / "out"))
    assert manifest["counts"]["instances"] == len(rows) == sum(shard["instances"] for shard in manifest["shards"])
    assert [shard["instances"] for shard in manifest["shards"]][:-1] == [300] * (len(manifest["shards"]) - 1)
    assert manifest["counts"]["documents"] == 120
    assert manifest["counts"]["masked_tokens"] == int(sum(row["masked_lm_weights"].sum() for row in rows))
    assert manifest["tokenizer"]["fingerprint"] == builder.tokenizer.fingerprint()
    assert read_schema_version(str(tmp_path / "out" / manifest["shards"][0]["file"])) == mindrecord.SCHEMA_VERSION
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["manifest.json"] + [s["file"] + ext for s in manifest["shards"] for ext in ("", ".db")])


def test_deterministic_across_workers(english, tmp_path):
    folder, documents, models = english
    corpus = _write_corpus(tmp_path / "c.txt", documents[:200])
    options = PretrainOptions(max_seq_length=48, max_predictions_per_seq=8, dupe_factor=2, chunk_documents=30,
                              whole_word_mask=True)
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        create_pretraining_data([str(corpus)], str(models["wordpiece"].source), str(out), options,
                                workers=workers, shard_size=500)
        outputs.append(out)
    names = sorted(p.name for p in outputs[0].iterdir())
    assert names == sorted(p.name for p in outputs[1].iterdir())
    for name in names:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


def test_dynamic_masking_masks_anew_each_epoch_and_shards_by_rank(english, tmp_path):
    folder, documents, models = english
    corpus = _write_corpus(tmp_path / "c.txt", documents[:60])
    options = PretrainOptions(max_seq_length=48, max_predictions_per_seq=8, dupe_factor=1, masking="dynamic")
    manifest = create_pretraining_data([str(corpus)], str(models["wordpiece"].source), str(tmp_path / "out"),
                                       options)
    assert manifest["counts"]["masked_tokens"] == 0
    dataset = create_pretraining_dataset(str(tmp_path / "out"), shuffle=False)
    iterator = dataset.create_tuple_iterator(output_numpy=True, num_epochs=2)
    epochs = [[row[4].copy() for row in iterator] for _ in range(2)]
    assert len(epochs[0]) == manifest["counts"]["instances"]
    assert any(not np.array_equal(a, b) for a, b in zip(*epochs))
    ranks = [create_pretraining_dataset(str(tmp_path / "out"), num_shards=2, shard_id=rank, shuffle=False)
             for rank in (0, 1)]
    sizes = [rank.get_dataset_size() for rank in ranks]
    assert abs(sizes[0] - sizes[1]) <= 1 and sum(sizes) >= manifest["counts"]["instances"]
    batched = create_pretraining_dataset(str(tmp_path / "out"), batch_size=4, seed=1)
    batch = next(batched.create_dict_iterator(output_numpy=True, num_epochs=1))
    assert batch["input_ids"].shape == (4, 48) and batch["masked_lm_weights"].shape == (4, 8)


def test_vocabulary_without_mask_token_is_a_user_error(tmp_path, marker):
    folder, documents = marker
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nd0s0\n", encoding="utf-8")
    with pytest.raises(UserError, match="mask token"):
        load_builder(str(tmp_path), PretrainOptions())


def test_no_output_when_nothing_usable_or_interrupted(marker, tmp_path, monkeypatch):
    folder, documents = marker
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="no pretraining instances"):
        create_pretraining_data([str(empty)], str(folder), str(tmp_path / "out"), PretrainOptions())
    corpus = _write_corpus(tmp_path / "c.txt", documents)

    def crash(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(mindrecord.ShardedWriter, "close", crash)
    with pytest.raises(KeyboardInterrupt):
        create_pretraining_data([str(corpus)], str(folder), str(tmp_path / "out"),
                                PretrainOptions(max_seq_length=32, dupe_factor=1), shard_size=50)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "empty.txt"]


def test_cli_pretrain_and_vocab(tmp_path):
    corpus = _write_corpus(tmp_path / "c.txt", _english_documents(60))
    run = [sys.executable, str(ROOT / "create_data.py")]
    vocab = subprocess.run(run + ["vocab", "--input", str(corpus), "--output", str(tmp_path / "model"),
                                  "--vocab_size", "150"], capture_output=True, text=True, cwd=ROOT)
    assert vocab.returncode == 0, vocab.stderr
    done = subprocess.run(run + ["pretrain", "--input", str(corpus), "--model_dir", str(tmp_path / "model"),
                                 "--output", str(tmp_path / "out"), "--max_seq_length", "32", "--masking", "dynamic",
                                 "--objective", "sop", "--whole_word_mask"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["options"]["objective"] == "sop" and manifest["counts"]["instances"] > 0
    assert manifest["options"]["dupe_factor"] == 1 and manifest["options"]["whole_word_mask"]
    assert "documents/s" in done.stderr
    bad = subprocess.run(run + ["pretrain", "--input", str(tmp_path / "missing"), "--model_dir",
                                str(tmp_path / "model"), "--output", str(tmp_path / "x")],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "missing" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_fast_writer_writes_the_same_bytes_as_mindspores_public_writer(marker, tmp_path, monkeypatch):
    folder, documents = marker
    _, result = _build(folder, documents, max_seq_length=32, dupe_factor=1)
    for fast in (True, False):
        monkeypatch.setattr(mindrecord, "FAST_WRITE", fast)
        writer = mindrecord.ShardedWriter(str(tmp_path / str(fast)), records.pretraining_schema("static"), shard_size=70,
                                          description=records.SCHEMA_DESC)
        writer.write(result.columns)
        shards = writer.close()
    assert len(shards) > 1
    for shard in shards:
        for suffix in ("", ".db"):
            name = shard["file"] + suffix
            assert (tmp_path / "True" / name).read_bytes() == (tmp_path / "False" / name).read_bytes(), name


def test_single_token_fast_path_chooses_what_the_word_loop_chooses():
    rng = np.random.default_rng(3)
    length, rows = 16, 50
    maskable = rng.random((rows, length)) < 0.8
    flat_starts = np.flatnonzero(maskable)
    group_rows = flat_starts // length
    order = np.lexsort((rng.random(len(flat_starts)), group_rows))
    bounds = np.searchsorted(group_rows[order], np.arange(rows + 1)).tolist()
    budgets = rng.integers(0, 6, rows)
    fast = _choose_tokens(order, bounds, flat_starts, length, budgets, 5)
    loop = _choose_words(order, bounds, np.ones(len(flat_starts), dtype=np.int64), flat_starts % length, budgets, 5)
    assert np.array_equal(fast[0], loop[0]) and np.array_equal(fast[1], loop[1])


@pytest.mark.parametrize("objective", ["nsp", "sop", "none"])
def test_sentences_longer_than_max_seq_length_are_truncated_and_counted(marker, objective):
    folder, documents = marker
    long_documents = [[" ".join(["d0s0"] * 100), " ".join(["d0s1"] * 80)], documents[1][:3], documents[2][:3]]
    _, result = _build(folder, long_documents, max_seq_length=32, dupe_factor=3, objective=objective,
                       masking="dynamic")
    assert len(result.columns["input_ids"]) > 0 and result.columns["input_mask"][:, -1].any()
    assert result.columns["input_ids"].shape[1] == 32
    assert result.counts["truncated_instances"] + result.counts["truncated_sentences"] > 0


def test_vocab_on_a_corpus_without_text_is_a_user_error_and_writes_nothing(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"\n\n")
    for kind in ("wordpiece", "bpe"):
        with pytest.raises(UserError, match="no usable text"):
            train_vocab([str(tmp_path / "empty.txt")], str(tmp_path / "model"), kind, 300)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt"]


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopped_cli_run_leaves_nothing_behind(tmp_path, sig, status):
    corpus = _write_corpus(tmp_path / "c.txt", _english_documents(30_000))
    train_vocab([str(corpus)], str(tmp_path / "model"), "wordpiece", 300)
    run = subprocess.Popen([sys.executable, str(ROOT / "create_data.py"), "pretrain", "--input", str(corpus),
                            "--model_dir", str(tmp_path / "model"), "--output", str(tmp_path / "out"), "--workers",
                            "2"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".tmp-out-*/.partial/*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    run.send_signal(sig)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == status, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "model"]


def test_mixed_corpus_folder_and_skipped_reasons_reach_the_manifest(english, tmp_path):
    _, documents, models = english
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = [" ".join(document) for document in documents[:30]]
    lines = "\n".join(json.dumps({"text": text}) for text in texts) + "\nnot json\n"
    (corpus / "part.jsonl.gz").write_bytes(gzip.compress(lines.encode("utf-8")))
    wiki = "".join(f'<doc id="{i}" title="t{i}">\nt{i}\n{text}\n</doc>\n' for i, text in enumerate(texts))
    (corpus / "wiki_00.bz2").write_bytes(bz2.compress(wiki.encode("utf-8")))
    (corpus / "image.bin").write_bytes(bytes(range(256)))
    (corpus / "empty.txt").write_bytes(b"")
    manifest = create_pretraining_data([str(corpus)], str(models["wordpiece"].source), str(tmp_path / "out"),
                                       PretrainOptions(max_seq_length=48, dupe_factor=1), split=True)
    assert manifest["counts"]["documents"] == 60
    assert manifest["counts"]["sentences"] == 2 * sum(len(document) for document in documents[:30])
    assert {"bad_json_line": 1, "binary_file": 1, "empty_file": 1}.items() <= manifest["skipped"].items()
    assert manifest["options"]["split_sentences"] and manifest["counts"]["instances"] > 0
