"""Entity-linked SQuAD features (LUKE): a generated dump -> mention DB -> linked windows, checked against an
independent search of the anchors in the text: every kept mention decodes to its anchor text in every
window, ambiguous and below-threshold anchors are not linked, mentions cut by a window are counted."""
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from tokenizers import Tokenizer, pre_tokenizers

from src.data.entities.linking import EntityLinker, EntityOptions, lowered
from src.data.entities.luke_pickles import convert_luke_pickles
from src.data.entities.mention_build import create_mention_db
from src.data.entities.mention_db import MentionDB, MentionOptions, normalize_mention
from src.data.entities.vocab import load_entity_vocab
from src.data.tasks.squad import SquadExample, SquadOptions
from src.data.tasks import squad_features
from src.data.tasks.squad_entities import SquadEntities
from src.data.tasks.squad_features import build_squad_features
from src.data.tasks.squad_records import create_squad_data
from src.data.tasks.task_records import load_task_columns, read_task_manifest
from src.data.tokenization import load_tokenizer
from tiny_tokenizers import train_bpe, train_wordpiece
from wiki_dumps import write_dump

ROOT = Path(__file__).resolve().parent.parent
PARIS = ("Paris is the capital of [[France]]. The [[Eiffel Tower]] and the [[Louvre]] are in Paris. The [[Seine]] "
         "flows past [[Notre-Dame de Paris|Notre Dame]] and [[Rouen]]. [[Notre Dame (band)|Notre Dame]] played "
         "there. The [[City|city]] is large. [[Eiffel (company)|Eiffel]] built things.")
TARGETS = ["France", "Eiffel Tower", "Louvre", "Seine", "Notre-Dame de Paris", "Rouen", "Notre Dame (band)", "City",
           "Eiffel (company)"]
PAGES = {"Paris": PARIS, **{title: "A page." for title in TARGETS},
         **{f"Town {n}": "Another city of the plain." for n in range(4)}}
# entity vocabulary in the lite release's order ([PAD] is not 0); Rouen is not in it, the Seine is "Seine River"
VOCAB = ["[MASK]", "[UNK]", "[PAD]", "[MASK2]", "France", "Eiffel Tower", "Louvre", "Seine River",
         "Notre-Dame de Paris", "Notre Dame (band)", "City", "Eiffel (company)"]
# anchor text -> title the entity ids stand for (notre dame is ambiguous, rouen outside the vocabulary)
LINKED = {"france": "France", "eiffel tower": "Eiffel Tower", "louvre": "Louvre", "seine": "Seine River",
          "city": "City", "eiffel": "Eiffel (company)"}
SENTENCES = ["Paris is the capital of France.", "The Eiffel Tower and the Louvre are in Paris.",
             "The Seine flows past Notre Dame and Rouen.", "The city is large.", "Eiffel built the Eiffel Tower."]
CONTEXT = " ".join(SENTENCES * 3)
QUESTIONS = ["Is the Eiffel Tower in France?", "Who built the Louvre by the Seine?", "Which city?"]
OPTIONS = SquadOptions(max_seq_length=40, doc_stride=8, max_query_length=16)
LINK_OPTIONS = EntityOptions(max_entity_length=128, max_mention_length=30, min_mention_link_prob=0.1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A mention DB of the generated dump, a model-redirects DB (Seine -> Seine River) and two LUKE dirs."""
    root = tmp_path_factory.mktemp("luke")
    dump = write_dump(root / "wiki.xml.bz2", PAGES, {"Lutetia": "Paris"})
    create_mention_db(str(root / "mentions"), MentionOptions(min_link_prob=0.0), str(root / "wiki.db"), str(dump))
    joblib.dump({"Seine": "Seine River"}, root / "model_redirects.pkl")
    convert_luke_pickles(str(root / "model_redirects"), MentionOptions(), None, str(root / "model_redirects.pkl"),
                         allow_pickle=True)
    plain = train_bpe(SENTENCES * 4 + QUESTIONS, root / "luke_plain", 300)
    spaced = root / "luke_spaced"
    spaced.mkdir()
    backend = Tokenizer.from_str(load_tokenizer(plain).backend.to_str())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    backend.save(str(spaced / "tokenizer.json"))
    wordpiece = train_wordpiece(SENTENCES * 4 + QUESTIONS, root / "luke_wordpiece", 200)
    for folder in (plain, spaced, wordpiece):
        (folder / "entity_vocab.json").write_text(json.dumps({title: i for i, title in enumerate(VOCAB)}))
    return {"root": root, "mentions": str(root / "mentions"), "model_redirects": str(root / "model_redirects"),
            "dirs": {"plain": plain, "spaced": spaced, "wordpiece": wordpiece}}


def _examples(title: str = "Lutetia") -> list[SquadExample]:
    return [SquadExample(f"q{i}", title, question, CONTEXT, ((CONTEXT[:5], 0),), False)
            for i, question in enumerate(QUESTIONS)]


def _build(world, kind: str, options: EntityOptions = LINK_OPTIONS, redirects: bool = True,
           is_training: bool = False, examples: list[SquadExample] | None = None, workers: int = 1):
    linker = EntityLinker(MentionDB(world["mentions"]), load_entity_vocab(str(world["dirs"][kind])), options,
                          MentionDB(world["model_redirects"]) if redirects else None)
    tokenizer = load_tokenizer(world["dirs"][kind])
    features = build_squad_features(examples or _examples(), tokenizer, OPTIONS, is_training=is_training,
                                    entities=SquadEntities(linker), workers=workers)
    return features, tokenizer, linker


def _expected_occurrences(text: str, texts: set[str]) -> list[tuple[int, int, str]]:
    """Anchor texts found independently: regex at word boundaries, longest first, left to right."""
    low, found = lowered(text), []
    for anchor in texts:
        found += [(m.start(), m.end(), anchor) for m in re.finditer(rf"(?<!\w){re.escape(anchor)}(?!\w)", low)]
    chosen, resume = [], 0
    for start, end, anchor in sorted(found, key=lambda item: (item[0], -item[1])):
        if start >= resume:
            chosen.append((start, end, anchor))
            resume = end
    return chosen


def _entities_of(features, row: int) -> list[tuple[int, list[int]]]:
    """(entity id, positions) of one window's real entities."""
    mask = features.entity_attention_mask[row].astype(bool)
    return [(int(entity), [p for p in positions.tolist() if p >= 0])
            for entity, positions in zip(features.entity_ids[row][mask], features.entity_position_ids[row][mask])]


@pytest.mark.parametrize("kind", ["plain", "spaced", "wordpiece"])
def test_every_kept_mention_decodes_to_its_anchor_in_every_window(world, kind):
    features, tokenizer, linker = _build(world, kind)
    vocab = linker.vocab
    assert len(features) > 10
    for row in range(len(features)):
        for entity, positions in _entities_of(features, row):
            assert positions == list(range(positions[0], positions[-1] + 1))
            text = normalize_mention(tokenizer.backend.decode(features.input_ids[row, positions].tolist()))
            assert LINKED.get(text) == vocab.title(entity), (row, text)
    pad = features.entity_attention_mask == 0
    assert (features.entity_ids[pad] == vocab.pad_id).all() and vocab.pad_id == 2
    assert (features.entity_position_ids[pad] == -1).all() and (features.entity_segment_ids[pad] == 0).all()
    rows, slots = np.nonzero(~pad)  # an entity's segment is its mention's: 0 for RoBERTa, 0/1 for BERT
    first = features.entity_position_ids[rows, slots, 0]
    assert np.array_equal(features.entity_segment_ids[rows, slots], features.segment_ids[rows, first])


@pytest.mark.parametrize("kind", ["plain", "spaced", "wordpiece"])
def test_context_mentions_are_placed_in_each_window_that_holds_them_and_cut_ones_counted(world, kind):
    features, _, linker = _build(world, kind)
    occurrences = [o for o in _expected_occurrences(CONTEXT, set(LINKED) | {"notre dame", "rouen"})
                   if o[2] in LINKED]
    cut = 0
    for row in range(len(features)):
        offsets = features.token_offsets[row]
        context_columns = np.flatnonzero(offsets[:, 0] >= 0)
        covered = offsets[context_columns[0], 0], offsets[context_columns[-1], 1]
        expected = []
        for start, end, anchor in occurrences:
            if covered[0] <= start and end <= covered[1]:
                inside = [c for c in context_columns if start <= offsets[c, 0] < offsets[c, 1] <= end]
                expected.append((linker.vocab.id(LINKED[anchor]), list(range(inside[0], inside[-1] + 1))))
            elif start < covered[1] and end > covered[0]:
                cut += 1
        found = [entity for entity in _entities_of(features, row) if entity[1][0] >= context_columns[0]]
        assert found == expected, row
    assert cut > 0 and features.entity_counts["dropped_cut_by_window"] == cut


def test_question_mentions_lead_every_window_of_the_question(world):
    features, tokenizer, linker = _build(world, "plain")
    for row in range(len(features)):
        question = QUESTIONS[features.example_index[row]]
        expected = [LINKED[anchor] for _, _, anchor in _expected_occurrences(question, set(LINKED))]
        first_context = np.flatnonzero(features.token_offsets[row, :, 0] >= 0)[0]
        found = [linker.vocab.title(e) for e, positions in _entities_of(features, row) if positions[0] < first_context]
        assert found == expected


def test_ambiguous_below_threshold_and_unknown_anchors_are_dropped(world):
    features, _, linker = _build(world, "plain", EntityOptions(min_mention_link_prob=0.5))
    linked = {linker.vocab.title(int(e)) for e in features.entity_ids[features.entity_attention_mask == 1]}
    assert "City" not in linked  # "city": linked once, on 5 pages: link probability 0.2 < 0.5
    assert not linked & {"Notre-Dame de Paris", "Notre Dame (band)"}  # "notre dame" points to two titles
    assert {"France", "Eiffel Tower", "Louvre", "Seine River", "Eiffel (company)"} <= linked
    articles = linker.article_counts(["Lutetia"] * 3)
    assert articles == {"articles": 1, "ambiguous_anchor_texts": 1, "anchors_below_min_link_prob": 1}
    assert linker.article_counts(["Nowhere"]) == {"articles": 1, "articles_without_anchors": 1}
    assert features.entity_counts["dropped_not_in_entity_vocab"] > 0  # rouen
    low, _, _ = _build(world, "plain", EntityOptions(min_mention_link_prob=0.1))
    assert linker.vocab.id("City") in low.entity_ids[low.entity_attention_mask == 1]


def test_model_redirects_map_titles_into_the_vocabulary(world):
    features, _, linker = _build(world, "plain", redirects=False)
    assert linker.vocab.id("Seine River") not in features.entity_ids[features.entity_attention_mask == 1]
    with_redirects, _, _ = _build(world, "plain")
    assert linker.vocab.id("Seine River") in with_redirects.entity_ids[with_redirects.entity_attention_mask == 1]


def test_at_most_max_entity_length_per_window(world):
    full, _, _ = _build(world, "plain")
    capped, _, _ = _build(world, "plain", EntityOptions(max_entity_length=2, min_mention_link_prob=0.1))
    per_window = full.entity_attention_mask.sum(axis=1)
    assert per_window.max() > 2 and capped.entity_ids.shape[1] == 2
    assert np.array_equal(capped.entity_ids, full.entity_ids[:, :2])
    assert capped.entity_counts["dropped_over_max_entity_length"] == int(np.maximum(per_window - 2, 0).sum())


def test_training_features_carry_the_same_entities(world):
    train, _, _ = _build(world, "plain", is_training=True)
    evaluation, _, _ = _build(world, "plain")
    for name in ("input_ids", "entity_ids", "entity_position_ids", "entity_attention_mask"):
        assert np.array_equal(getattr(train, name), getattr(evaluation, name)), name


def test_same_features_and_counts_for_any_number_of_workers(world, monkeypatch):
    monkeypatch.setattr(squad_features, "CHUNK_EXAMPLES", 2)  # several chunks, some sharing a context
    examples = _examples() + _examples("Paris") + [SquadExample("x", "Nowhere", "Where?", "Nowhere at all.",
                                                                (("Nowhere", 0),), False)]
    one, _, _ = _build(world, "plain", examples=examples)
    two, _, _ = _build(world, "plain", examples=examples, workers=2)
    assert one.entity_attention_mask.sum() > 0
    for name in one.columns():
        assert np.array_equal(one.columns()[name], two.columns()[name]), name
    assert one.entity_counts == two.entity_counts and one.counts == two.counts


def _squad_file(path: Path, title: str) -> str:
    qas = [{"id": f"q{i}", "question": q, "answers": [{"text": "Paris", "answer_start": 0}]}
           for i, q in enumerate(QUESTIONS)]
    path.write_text(json.dumps({"data": [{"title": title, "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}))
    return str(path)


def test_create_data_writes_entity_columns_and_counts(world, tmp_path):
    squad = _squad_file(tmp_path / "train.json", "Lutetia")
    result = subprocess.run([sys.executable, str(ROOT / "create_data.py"), "squad", "--input", squad, "--model_dir",
                             str(world["dirs"]["plain"]), "--output", str(tmp_path / "out"), "--mention_db",
                             world["mentions"], "--model_redirects", world["model_redirects"], "--max_seq_length",
                             "40", "--doc_stride", "8", "--max_query_length", "16", "--min_mention_link_prob", "0.1"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    manifest = read_task_manifest(str(tmp_path / "out"), "squad")
    columns = load_task_columns(str(tmp_path / "out"))
    expected, _, _ = _build(world, "plain", is_training=True)
    for name in ("entity_ids", "entity_position_ids", "entity_segment_ids", "entity_attention_mask"):
        assert np.array_equal(columns[name], getattr(expected, name)), name
    counts = manifest["entities"]["counts"]
    assert counts["kept"] == int(expected.entity_attention_mask.sum()) > 0
    assert counts["dropped_cut_by_window"] == expected.entity_counts["dropped_cut_by_window"] > 0
    assert counts["ambiguous_anchor_texts"] == 1 and counts["dropped_not_in_entity_vocab"] > 0
    assert manifest["entities"]["entity_vocab"]["pad_id"] == 2


def test_luke_dir_without_mention_db_has_no_entities_said_in_one_line(world, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        create_squad_data(_squad_file(tmp_path / "dev.json", "Paris"), str(world["dirs"]["plain"]),
                          str(tmp_path / "out"), OPTIONS, "eval")
    assert sum("no --mention_db" in record.message for record in caplog.records) == 1
    assert "entity_ids" not in read_task_manifest(str(tmp_path / "out"))["columns"]


def test_mention_db_without_entity_vocab_is_one_line(world, tmp_path):
    plain_bert = tmp_path / "roberta"
    plain_bert.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (plain_bert / name).write_bytes((world["dirs"]["plain"] / name).read_bytes())
    result = subprocess.run([sys.executable, str(ROOT / "create_data.py"), "squad", "--input",
                             _squad_file(tmp_path / "t.json", "Paris"), "--model_dir", str(plain_bert), "--output",
                             str(tmp_path / "out"), "--mention_db", world["mentions"]],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no entity vocabulary" in result.stderr and not (tmp_path / "out").exists()


def test_features_feed_the_luke_question_answering_head(world):
    import mindspore as ms
    import yaml

    from src.models import build_model
    from src.models.config import ModelConfig

    features, tokenizer, linker = _build(world, "plain", examples=_examples() + _examples("Nowhere")[:1])
    config = yaml.safe_load((ROOT / "configs" / "models" / "luke_tiny.yaml").read_text())
    config.update(vocab_size=tokenizer.vocab_size, entity_vocab_size=linker.vocab.size, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, max_mention_length=LINK_OPTIONS.max_mention_length,
                  initializer_range=0.5)  # weights large enough for the entities to move the logits clearly
    model = build_model(ModelConfig(**config), "question_answering")
    model.set_train(False)
    words = [ms.Tensor(a) for a in (features.input_ids, features.input_mask, features.segment_ids)]
    entities = [ms.Tensor(a) for a in (features.entity_ids, features.entity_attention_mask,
                                       features.entity_segment_ids, features.entity_position_ids)]
    start, _ = (out.asnumpy() for out in model(*words, *entities))
    plain, _ = (out.asnumpy() for out in model(*words))
    assert start.shape == features.input_ids.shape and np.isfinite(start).all()
    linked = features.entity_attention_mask.any(axis=1)
    assert linked.any() and (~linked).any()
    change = np.abs(start - plain).max(axis=1)
    assert change[linked].min() > 1e-3  # the entities change the words' states
    assert change[~linked].max() < 1e-5  # a window of [PAD] entities (mask 0) is LUKE as RoBERTa
