"""LUKE tokenizer parity with transformers' LukeTokenizer on a tiny local BPE and entity vocabulary,
and the entity vocabulary's three file formats."""
import json
import warnings

import pytest
from tokenizers import decoders
from transformers import LukeTokenizer
from transformers.tokenization_python import PreTrainedTokenizer

from src.data.entities.encoding import python_longest_first
from src.data.entities.vocab import load_entity_vocab
from src.data.tasks.features import longest_first
from src.data.tokenization import LukeTokenizer as OurLukeTokenizer
from src.data.tokenization import load_tokenizer
from src.errors import UserError
from tiny_tokenizers import LUKE_ENTITIES, train_luke

warnings.filterwarnings("ignore", module="transformers")

BEYONCE = "Beyoncé lives in Los Angeles."
TOKYO = "東京は日本の首都です。私は東京に住んでいます"
EMOJI = "I ❤️ Paris 😀 and New York🎉 too"
ACCENTS = "café naïve Ångström résumé à Paris"
# (text, spans, titles or None for [MASK]): spans at the edges, inside words and CJK runs, next to emoji
CASES = [
    (BEYONCE, [(0, 7), (17, 28)], ["Beyoncé", "Los Angeles"]),
    (BEYONCE, [(0, 7), (17, 28)], ["Beyoncé", "Nowhere"]),
    (BEYONCE, [(0, 7), (17, 28)], None),
    (BEYONCE, [(0, len(BEYONCE))], None),
    (BEYONCE, [(2, 5), (20, 24)], ["Paris", "Paris"]),
    (BEYONCE, [(16, 28)], None),
    (BEYONCE, [(0, 3), (0, 7)], None),
    (TOKYO, [(0, 2), (16, 18)], ["東京", "東京"]),
    (TOKYO, [(3, 5)], ["日本"]),
    (EMOJI, [(2, 4), (5, 10), (17, 25)], ["Love", "Paris", "New York"]),
    (EMOJI, [(11, 12), (25, 26), (27, len(EMOJI))], None),
    (ACCENTS, [(0, 4), (5, 10), (11, 19), (29, 34)], None),
    (ACCENTS, [(1, 3), (12, 14)], ["café", "Paris"]),
    ("  spaced   out  ", [(2, 8), (11, 14)], None),
    (BEYONCE, [], None),
]
PAIRS = [
    (BEYONCE, TOKYO, [(0, 7)], [(0, 2), (16, 18)], ["Beyoncé"], None),
    (EMOJI, ACCENTS, [(5, 10)], [(29, 34)], ["Paris"], ["Paris"]),
    (ACCENTS, BEYONCE, [], [(17, 28)], None, ["Los Angeles"]),
    (TOKYO, EMOJI, [(0, 2)], None, None, None),
]
CORPUS = [BEYONCE, TOKYO, EMOJI, ACCENTS, "the lazy dog", "New York and Paris and 東京"] * 20


class ReferenceLuke(LukeTokenizer):
    """transformers 5.23's LukeTokenizer calls self.truncate_sequences, which its TokenizersBackend base lacks
    (AttributeError as soon as an entity input is truncated); transformers' own Python implementation, the one
    LukeTokenizer was written against, is supplied here."""

    truncate_sequences = PreTrainedTokenizer.truncate_sequences


@pytest.fixture(scope="module")
def luke_dir(tmp_path_factory):
    return train_luke(CORPUS, tmp_path_factory.mktemp("luke"), 400)


def _reference(folder, task=None, max_mention_length=30, max_entity_length=32):
    return ReferenceLuke(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"),
                         entity_vocab_file=str(folder / "entity_vocab.json"), task=task,
                         max_mention_length=max_mention_length, max_entity_length=max_entity_length)


@pytest.fixture(scope="module")
def ours(luke_dir):
    return load_tokenizer(luke_dir)


def _fields(encoding):
    entities = encoding.entities
    return {"input_ids": encoding.ids, "token_type_ids": encoding.type_ids, "attention_mask": encoding.attention_mask,
            "entity_ids": entities.entity_ids, "entity_position_ids": entities.entity_position_ids,
            "entity_attention_mask": entities.entity_attention_mask,
            "entity_token_type_ids": entities.entity_token_type_ids}


def _hf_fields(out):
    return {key: out[key] for key in ("input_ids", "token_type_ids", "attention_mask", "entity_ids",
                                      "entity_position_ids", "entity_attention_mask", "entity_token_type_ids")}


def test_a_luke_directory_loads_a_luke_tokenizer(ours, luke_dir):
    assert isinstance(ours, OurLukeTokenizer)
    assert ours.entity_vocab.mask_id == LUKE_ENTITIES.index("[MASK]")
    assert ours.entities.max_entity_length == 128 and ours.entities.max_mention_length == 30
    (luke_dir / "config.yaml").write_text("model_type: luke\nmax_entity_length: 7\nmax_mention_length: 5\n")
    try:
        configured = load_tokenizer(luke_dir)
    finally:
        (luke_dir / "config.yaml").unlink()
    assert configured.entities.max_entity_length == 7 and configured.entities.max_mention_length == 5


@pytest.mark.parametrize("text, spans, titles", CASES)
def test_single_texts_match_transformers(ours, luke_dir, text, spans, titles):
    hf = _reference(luke_dir)
    expected = _hf_fields(hf(text, entity_spans=spans, entities=titles, return_token_type_ids=True))
    assert _fields(ours.encode(text, entity_spans=spans, entities=titles, max_entity_length=32)) == expected


def test_unknown_titles_are_unk_and_no_titles_are_mask(ours):
    encoding = ours.encode(BEYONCE, entity_spans=[(0, 7), (17, 28)], entities=["Beyoncé", "Nowhere"])
    assert encoding.entities.entity_ids == [LUKE_ENTITIES.index("Beyoncé"), LUKE_ENTITIES.index("[UNK]")]
    masked = ours.encode(BEYONCE, entity_spans=[(0, 7), (17, 28)])
    assert masked.entities.entity_ids == [LUKE_ENTITIES.index("[MASK]")] * 2


@pytest.mark.parametrize("text, pair, spans, pair_spans, titles, pair_titles", PAIRS)
def test_pairs_match_transformers(ours, luke_dir, text, pair, spans, pair_spans, titles, pair_titles):
    hf = _reference(luke_dir)
    kwargs = dict(entity_spans=spans, entity_spans_pair=pair_spans, entities=titles, entities_pair=pair_titles)
    expected = _hf_fields(hf(text, pair, return_token_type_ids=True, **kwargs))
    assert _fields(ours.encode(text, pair, max_entity_length=32, **kwargs)) == expected


def test_pair_entities_without_first_spans_are_kept(ours):
    """transformers returns no entities at all when only the pair has spans; we read no spans as none."""
    kwargs = dict(entity_spans_pair=[(17, 28)], entities_pair=["Los Angeles"])
    assert ours.encode(ACCENTS, BEYONCE, **kwargs) == ours.encode(ACCENTS, BEYONCE, entity_spans=[], **kwargs)
    assert ours.encode(ACCENTS, BEYONCE, **kwargs).entities.entity_ids == [LUKE_ENTITIES.index("Los Angeles")]


@pytest.mark.parametrize("max_length", [6, 9, 14, 23])
@pytest.mark.parametrize("max_entity_length", [1, 2, 8])
def test_truncation_and_padding_match_transformers(ours, luke_dir, max_length, max_entity_length):
    hf = _reference(luke_dir)
    settings = dict(max_length=max_length, max_entity_length=max_entity_length)
    for text, spans, titles in CASES:
        out = hf(text, entity_spans=spans, entities=titles, truncation=True, padding="max_length",
                 return_token_type_ids=True, **settings)
        assert _fields(ours.encode(text, entity_spans=spans, entities=titles, padding=True, **settings)) \
            == _hf_fields(out), (text, spans)
    for text, pair, spans, pair_spans, titles, pair_titles in PAIRS:
        kwargs = dict(entity_spans=spans, entity_spans_pair=pair_spans, entities=titles, entities_pair=pair_titles)
        out = hf(text, pair, truncation=True, padding="max_length", return_token_type_ids=True, **settings, **kwargs)
        assert _fields(ours.encode(text, pair, padding=True, **settings, **kwargs)) == _hf_fields(out), (text, pair)


def test_entities_cut_by_truncation_are_dropped_and_counted(ours):
    encoding = ours.encode(BEYONCE, entity_spans=[(0, 7), (17, 28)], max_length=5, max_entity_length=1)
    entities = encoding.entities
    assert (entities.entity_ids, entities.cut_by_truncation, entities.over_max_entity_length) == ([2], 1, 0)
    capped = ours.encode(EMOJI, entity_spans=[(2, 4), (5, 10), (17, 25)], max_entity_length=2).entities
    assert (len(capped.entity_ids), capped.cut_by_truncation, capped.over_max_entity_length) == (2, 0, 1)


@pytest.mark.parametrize("max_mention_length", [1, 3])
def test_long_mentions_are_cut_to_max_mention_length(ours, luke_dir, max_mention_length):
    hf = _reference(luke_dir, max_mention_length=max_mention_length)
    spans = [(0, len(BEYONCE)), (17, 28)]
    expected = hf(BEYONCE, entity_spans=spans, padding="max_length", max_length=20, max_entity_length=4)
    ours_positions = ours.encode(BEYONCE, entity_spans=spans, padding=True, max_length=20, max_entity_length=4,
                                 max_mention_length=max_mention_length).entities.entity_position_ids
    assert ours_positions == expected["entity_position_ids"]
    assert all(len(row) == max_mention_length for row in ours_positions)


@pytest.mark.parametrize("task, spans", [
    ("entity_classification", [[(17, 28)], [(0, 7)], [(0, len(BEYONCE))]]),
    ("entity_pair_classification", [[(0, 7), (17, 28)], [(17, 28), (0, 7)], [(0, 3), (0, 7)], [(2, 5), (2, 5)]]),
    ("entity_span_classification", [[(0, 7), (8, 13), (17, 28), (0, 13)]]),
])
def test_task_modes_match_transformers(ours, luke_dir, task, spans):
    hf = _reference(luke_dir, task=task)
    for entity_spans in spans:
        for max_length in (None, 8):
            settings = {} if max_length is None else dict(truncation=True, max_length=max_length)
            expected = _hf_fields(hf(BEYONCE, entity_spans=entity_spans, return_token_type_ids=True, **settings))
            encoding = ours.encode(BEYONCE, entity_spans=entity_spans, task=task, max_length=max_length,
                                   max_entity_length=hf.max_entity_length)
            assert _fields(encoding) == expected, (entity_spans, max_length)


def test_markers_are_tokens_of_their_own(ours):
    encoding = ours.encode(BEYONCE, entity_spans=[(0, 7), (17, 28)], task="entity_pair_classification")
    ent, ent2 = ours.backend.token_to_id("<ent>"), ours.backend.token_to_id("<ent2>")
    assert encoding.ids.count(ent) == 2 and encoding.ids.count(ent2) == 2
    first, second = encoding.entities.entity_position_ids
    assert [encoding.ids[i] for i in first if i >= 0][::len([i for i in first if i >= 0]) - 1] == [ent, ent]
    assert [encoding.ids[i] for i in second if i >= 0][-1] == ent2


def test_without_spans_it_is_the_word_tokenizer(ours, luke_dir):
    hf = _reference(luke_dir)
    for text, pair in [(BEYONCE, None), (TOKYO, EMOJI), (ACCENTS, BEYONCE)]:
        for max_length in (None, 9):
            settings = {} if max_length is None else dict(truncation=True, max_length=max_length)
            expected = hf(text, pair, return_token_type_ids=True, **settings)
            encoding = ours.encode(text, pair, max_length=max_length)
            assert (encoding.ids, encoding.type_ids) == (expected["input_ids"], expected["token_type_ids"])
            assert encoding.entities.entity_ids == []
    padded = ours.encode(BEYONCE, max_length=16, padding=True, max_entity_length=3).entities
    assert padded.entity_ids == [ours.entity_vocab.pad_id] * 3 and padded.entity_attention_mask == [0] * 3
    assert padded.entity_position_ids == [[-1] * 30] * 3


def test_spans_on_word_boundaries_keep_the_whole_text_tokens_and_offsets(ours):
    whole = ours.encode(BEYONCE)
    split = ours.encode(BEYONCE, entity_spans=[(0, 7), (17, 28)])
    assert (split.ids, split.offsets, split.tokens) == (whole.ids, whole.offsets, whole.tokens)
    for positions, (start, end) in zip(split.entities.entity_position_ids, [(0, 7), (17, 28)]):
        tokens = [i for i in positions if i >= 0]
        assert split.offsets[tokens[0]][0] in (start, start - 1) and split.offsets[tokens[-1]][1] == end


def test_offsets_of_split_text_point_at_their_characters(ours):
    """Every token's offsets reproduce its text in its own input (markers are zero-width at the span's edge)."""
    decoder = decoders.ByteLevel()
    markers = {ours.backend.token_to_id("<ent>"), ours.backend.token_to_id("<ent2>")}
    encodings = [(ours.encode(text, entity_spans=spans), text, None) for text, spans, _ in CASES]
    encodings += [(ours.encode(text, pair, entity_spans=spans, entity_spans_pair=pair_spans), text, pair)
                  for text, pair, spans, pair_spans, _, _ in PAIRS]
    encodings.append((ours.encode(BEYONCE, entity_spans=[(0, 7), (17, 28)], task="entity_pair_classification"),
                      BEYONCE, None))
    for encoding, text, pair in encodings:
        for token_id, token, (start, end), sequence in zip(encoding.ids, encoding.tokens, encoding.offsets,
                                                           encoding.sequence_ids):
            if sequence is None or token_id in markers:
                assert start == end
                continue
            piece, span = decoder.decode([token]), (text, pair)[sequence][start:end]
            assert bool(span) if "\ufffd" in piece else span == piece.strip(" "), (text, token, span)


def test_literal_entity_names_in_text_stay_words(ours):
    """transformers 5.23 also adds [UNK]/[PAD]/[MASK]/[MASK2] to the word vocabulary (ids past the released
    embedding rows); the released tokenizers, and ours, read them as plain text."""
    encoding = ours.encode("the [MASK] and [PAD]")
    assert max(encoding.ids) < ours.vocab_size and ours.backend.token_to_id("[MASK]") is None


def test_bad_spans_and_titles_are_user_errors(ours):
    for spans in ([(0, 99)], [(5, 2)], [(3, 3)], [("a", 2)], [(0,)], [(-1, 2)]):
        with pytest.raises(UserError, match="entity span"):
            ours.encode(BEYONCE, entity_spans=spans)
    with pytest.raises(UserError, match="one title per span"):
        ours.encode(BEYONCE, entity_spans=[(0, 7)], entities=["Beyoncé", "Paris"])
    with pytest.raises(UserError, match="one title per span"):
        ours.encode(BEYONCE, entities=["Beyoncé"])
    with pytest.raises(UserError, match="takes 2 entity span"):
        ours.encode(BEYONCE, entity_spans=[(0, 7)], task="entity_pair_classification")
    with pytest.raises(UserError, match="too small"):
        ours.encode(BEYONCE, entity_spans=[(0, 7)], max_length=1)


def test_python_longest_first_is_transformers_rule():
    reference = PreTrainedTokenizer.truncate_sequences
    fake = type("Side", (), {"truncation_side": "right"})()
    for first in range(6):
        for second in range(6):
            for budget in range(first + second + 1):
                ids, pair, _ = reference(fake, list(range(first)), list(range(second)), first + second - budget)
                assert python_longest_first(first, second, budget) == (len(ids), len(pair))
    assert python_longest_first(3, 3, 5) != longest_first(3, 3, 5)  # the two libraries' rules differ on ties


@pytest.mark.parametrize("line", ["max_entity_length: many", "max_mention_length: 0", "max_entity_length: 2.5"])
def test_bad_lengths_in_config_yaml_are_user_errors(tmp_path, line):
    folder = train_luke(CORPUS[:6], tmp_path / "model", 300)
    (folder / "config.yaml").write_text(f"model_type: luke\n{line}\n")
    with pytest.raises(UserError, match="config.yaml: max_.*expected a positive integer"):
        load_tokenizer(folder)


def test_save_carries_the_entity_vocabulary(ours, tmp_path):
    ours.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert isinstance(again, OurLukeTokenizer) and again.fingerprint() == ours.fingerprint()


def _write_vocab_formats(folder):
    """The same vocabulary as transformers' .json, the original .tsv and the multilingual .jsonl."""
    titles = ["[PAD]", "[UNK]", "[MASK]", "[MASK2]", "Beyoncé", "東京", "Los Angeles"]
    paths = {suffix: folder / f"entity_vocab{suffix}" for suffix in (".json", ".tsv", ".jsonl")}
    paths[".json"].write_text(json.dumps({title: i for i, title in enumerate(titles)}, ensure_ascii=False), "utf-8")
    paths[".tsv"].write_text("".join(f"{title}\t{100 - i}\n" for i, title in enumerate(titles)), "utf-8")
    lines = [{"id": i, "entities": [[title, None if title.startswith("[") else "en"]], "count": 1}
             for i, title in enumerate(titles)]
    paths[".jsonl"].write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", "utf-8")
    return titles, paths


def test_the_three_vocabulary_formats_read_to_the_same_ids(tmp_path):
    titles, paths = _write_vocab_formats(tmp_path)
    vocabs = {suffix: load_entity_vocab(str(path)) for suffix, path in paths.items()}
    for title in titles:
        ids = {suffix: vocab.id(title, language="en") for suffix, vocab in vocabs.items()}
        assert set(ids.values()) == {titles.index(title)}, (title, ids)
    for vocab in vocabs.values():
        assert (vocab.pad_id, vocab.unk_id, vocab.mask_id, vocab.mask2_id, vocab.size) == (0, 1, 2, 3, len(titles))
        assert vocab.id("Nowhere", language="en") == 1


def test_multilingual_titles_are_looked_up_with_their_language(tmp_path):
    folder = train_luke(CORPUS[:6], tmp_path / "model", 300)
    (folder / "entity_vocab.json").unlink()
    _, paths = _write_vocab_formats(tmp_path)
    paths[".jsonl"].replace(folder / "entity_vocab.jsonl")
    tokenizer = load_tokenizer(folder)
    spans = [(0, 7), (17, 28)]
    english = tokenizer.encode(BEYONCE, entity_spans=spans, entities=["Beyoncé", "Los Angeles"], language="en")
    assert english.entities.entity_ids == [4, 6]
    unprefixed = tokenizer.encode(BEYONCE, entity_spans=spans, entities=["Beyoncé", "Los Angeles"])
    assert unprefixed.entities.entity_ids == [tokenizer.entity_vocab.unk_id] * 2  # keys read "en:Title"


def test_a_vocabulary_without_mask_is_one_user_error(tmp_path):
    (tmp_path / "entity_vocab.json").write_text(json.dumps({"[PAD]": 0, "[UNK]": 1, "Paris": 2}))
    train_luke(CORPUS[:6], tmp_path / "model", 300)
    (tmp_path / "model" / "entity_vocab.json").replace(tmp_path / "model" / "unused.json")
    (tmp_path / "entity_vocab.json").replace(tmp_path / "model" / "entity_vocab.json")
    with pytest.raises(UserError) as caught:
        load_tokenizer(tmp_path / "model")
    message = str(caught.value)
    assert "entity_vocab.json" in message and "[MASK]" in message and "\n" not in message
