"""LUKE pretraining data: a generated dump -> DumpDB -> rows with hyperlinks as entities, read back through the
trainer's dataset; entity positions decode to the link texts, words and entities masked as LUKE does."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.data.entities.dump_db import build_dump_db
from src.data.entities.mention_db import normalize_mention
from src.data.pretraining.luke import LukeOptions, token_spans
from src.data.pretraining.luke_records import create_luke_pretraining_data
from src.data.pretraining.records import create_pretraining_dataset
from src.data.tokenization import load_tokenizer
from tiny_tokenizers import train_bpe
from wiki_dumps import PAGES, REDIRECTS, write_dump

ROOT = Path(__file__).resolve().parent.parent
LONG = " ".join(f"Sentence {n} of the long page names [[France]], [[Troy]] and [[Lutetia|old Paris]]."
               for n in range(12))
ALL_PAGES = {**PAGES, "Long page": LONG}
VOCAB = ["[MASK]", "[UNK]", "[PAD]", "Paris", "France", "Seine", "Troy", "Paris (mythology)"]  # no Rouen
OPTIONS = LukeOptions(max_seq_length=48, max_entity_length=4, max_mention_length=3, max_predictions_per_seq=8,
                      whole_word_mask=True, chunk_pages=2)


def _link_texts() -> dict[str, set[str]]:
    """title (through redirects) -> the normalized texts linking to it in the pages, parsed independently."""
    texts: dict[str, set[str]] = {}
    for text in ALL_PAGES.values():
        for title, anchor in re.findall(r"\[\[([^|\]]+)(?:\|([^\]]+))?\]\]", text):
            texts.setdefault(REDIRECTS.get(title, title), set()).add(normalize_mention(anchor or title))
    return texts


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("luke_pretrain")
    db = build_dump_db(str(write_dump(root / "wiki.xml.bz2", ALL_PAGES)), str(root / "wiki.db"))
    model = train_bpe([re.sub(r"\[\[|\]\]|\|", " ", text) for text in ALL_PAGES.values()] * 3, root / "luke", 300)
    (model / "entity_vocab.json").write_text(json.dumps({title: i for i, title in enumerate(VOCAB)}))
    return {"root": root, "db": db.path, "model": model}


def _rows(folder: Path, epochs: int = 1) -> list[list[dict]]:
    dataset = create_pretraining_dataset(str(folder), shuffle=False)
    iterator = dataset.create_dict_iterator(output_numpy=True, num_epochs=epochs)
    return [[{name: value.copy() for name, value in row.items()} for row in iterator] for _ in range(epochs)]


def _unmasked(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """A row's word and entity ids with the masked ones put back."""
    words, entities = row["input_ids"].copy(), row["entity_ids"].copy()
    real = row["masked_lm_weights"] > 0
    words[row["masked_lm_positions"][real]] = row["masked_lm_ids"][real]
    masked = row["masked_entity_weights"] > 0
    entities[row["masked_entity_positions"][masked]] = row["masked_entity_ids"][masked]
    return words, entities


def test_token_spans_cover_the_characters_of_each_span():
    offsets = np.array([[0, 5], [5, 6], [6, 12], [12, 13], [13, 13]])
    spans = token_spans(offsets, np.array([[0, 5], [6, 9], [4, 7], [13, 13]]))
    assert spans[:3].tolist() == [[0, 1], [2, 3], [0, 3]] and spans[3, 0] >= spans[3, 1]  # empty: no token


def test_static_rows_link_decode_and_mask_like_luke(world, tmp_path):
    manifest = create_luke_pretraining_data(world["db"], str(world["model"]), str(tmp_path / "static"), OPTIONS)
    dynamic = create_luke_pretraining_data(world["db"], str(world["model"]), str(tmp_path / "dynamic"),
                                           LukeOptions(**{**OPTIONS.__dict__, "masking": "dynamic"}))
    static_rows, = _rows(tmp_path / "static")
    raw_rows, = _rows(tmp_path / "dynamic")
    tokenizer, texts = load_tokenizer(world["model"]), _link_texts()
    vocab = {i: title for i, title in enumerate(VOCAB)}
    assert len(static_rows) == manifest["counts"]["instances"] == dynamic["counts"]["instances"] > 3
    assert manifest["skipped"]["links_not_in_entity_vocab"] >= 1  # Rouen
    for row, raw in zip(static_rows, raw_rows):
        words, entities = _unmasked(row)
        masked = row["masked_entity_weights"] > 0
        attention = row["entity_attention_mask"].astype(bool)
        assert all(np.array_equal(a, b) for a, b in zip((words, entities), _unmasked(raw)))  # static = dynamic
        assert (row["entity_ids"][row["masked_entity_positions"][masked]] == VOCAB.index("[MASK]")).all()
        assert masked.sum() == max(1, round(attention.sum() * 0.15))
        assert (row["entity_ids"][~attention] == VOCAB.index("[PAD]")).all()
        assert (row["entity_position_ids"][~attention] == -1).all() and (row["entity_segment_ids"] == 0).all()
        for entity, positions in zip(entities[attention], row["entity_position_ids"][attention]):
            positions = positions[positions >= 0]
            text = normalize_mention(tokenizer.decode(words[positions].tolist()))
            if len(positions) < OPTIONS.max_mention_length:
                assert text in texts[vocab[int(entity)]], (vocab[int(entity)], text)
            else:  # cut to its first max_mention_length tokens
                assert any(t.startswith(text) for t in texts[vocab[int(entity)]]), (vocab[int(entity)], text)


def test_dynamic_rows_mask_anew_each_epoch(world, tmp_path):
    create_luke_pretraining_data(world["db"], str(world["model"]), str(tmp_path / "d"),
                                 LukeOptions(**{**OPTIONS.__dict__, "masking": "dynamic"}))
    first, second = _rows(tmp_path / "d", epochs=2)
    assert any(not np.array_equal(a["masked_entity_positions"], b["masked_entity_positions"])
               or not np.array_equal(a["masked_lm_positions"], b["masked_lm_positions"]) for a, b in zip(first, second))
    for a, b in zip(first, second):
        for row in (a, b):
            real = row["masked_entity_weights"] > 0
            assert real.sum() == max(1, round(row["entity_attention_mask"].sum() * 0.15))
        assert np.array_equal(a["entity_position_ids"], b["entity_position_ids"])


def test_same_files_for_any_number_of_workers(world, tmp_path):
    create_luke_pretraining_data(world["db"], str(world["model"]), str(tmp_path / "w1"), OPTIONS)
    create_luke_pretraining_data(world["db"], str(world["model"]), str(tmp_path / "w2"), OPTIONS, workers=2)
    assert sorted(p.name for p in (tmp_path / "w1").iterdir()) == sorted(p.name for p in (tmp_path / "w2").iterdir())
    assert _rows_equal(tmp_path / "w1", tmp_path / "w2")
    first = json.loads((tmp_path / "w1" / "manifest.json").read_text())
    second = json.loads((tmp_path / "w2" / "manifest.json").read_text())
    assert first["counts"] == second["counts"] and first["skipped"] == second["skipped"]


def _rows_equal(a: Path, b: Path) -> bool:
    (rows_a,), (rows_b,) = _rows(a), _rows(b)
    return len(rows_a) == len(rows_b) and all(
        all(np.array_equal(x[name], y[name]) for name in x) for x, y in zip(rows_a, rows_b))


def test_a_model_dir_without_entity_vocabulary_is_one_line(world, tmp_path):
    plain = tmp_path / "roberta"
    plain.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (plain / name).write_bytes((world["model"] / name).read_bytes())
    result = subprocess.run([sys.executable, str(ROOT / "create_data.py"), "pretrain", "--objective", "luke",
                             "--dump_db", world["db"], "--model_dir", str(plain), "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no entity vocabulary" in result.stderr and not (tmp_path / "out").exists()


def test_an_entity_vocabulary_without_mask_is_one_line(world, tmp_path):
    model = tmp_path / "luke"
    model.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (model / name).write_bytes((world["model"] / name).read_bytes())
    (model / "entity_vocab.json").write_text(json.dumps({"[PAD]": 0, "[UNK]": 1, "Paris": 2}))
    result = subprocess.run([sys.executable, str(ROOT / "create_data.py"), "pretrain", "--objective", "luke",
                             "--dump_db", world["db"], "--model_dir", str(model), "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "[MASK]" in result.stderr and not (tmp_path / "out").exists()


def test_rows_feed_the_luke_pretraining_head(world, tmp_path):
    import mindspore as ms
    import yaml

    from src.models import build_model
    from src.models.config import ModelConfig

    create_luke_pretraining_data(world["db"], str(world["model"]), str(tmp_path / "s"), OPTIONS)
    batch = next(create_pretraining_dataset(str(tmp_path / "s"), batch_size=4, shuffle=False)
                 .create_dict_iterator(output_numpy=True, num_epochs=1))
    config = yaml.safe_load((ROOT / "configs" / "models" / "luke_tiny.yaml").read_text())
    config.update(vocab_size=load_tokenizer(world["model"]).vocab_size, entity_vocab_size=len(VOCAB),
                  max_mention_length=OPTIONS.max_mention_length)
    model = build_model(ModelConfig(**config), "pretraining")
    model.set_train(False)
    names = ("input_ids", "input_mask", "segment_ids", "entity_ids", "entity_attention_mask", "entity_segment_ids",
             "entity_position_ids", "masked_lm_positions", "masked_entity_positions")
    words, entities = (out.asnumpy() for out in model(*(ms.Tensor(batch[name]) for name in names)))
    assert words.shape == (4, OPTIONS.max_predictions_per_seq, config["vocab_size"]) and np.isfinite(words).all()
    assert entities.shape == (4, OPTIONS.max_entity_predictions, len(VOCAB)) and np.isfinite(entities).all()
