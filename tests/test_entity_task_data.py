"""LUKE's entity-task builders (Open Entity, TACRED, CoNLL spans) on tiny generated files."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from src.data.tasks.task_records import load_task_columns, read_task_manifest
from src.data.tasks.conll_spans import create_conll_span_data, read_conll_documents
from src.data.tasks.entity_features import EntityTaskOptions
from src.data.tasks.open_entity import TYPES, create_open_entity_data
from src.data.tasks.tacred import RELATIONS, create_tacred_data, read_tacred
from src.data.tokenization import load_tokenizer
from src.errors import UserError
from tiny_tokenizers import train_luke

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCES = ["Beyoncé lives in Los Angeles .", "Barack Obama was born in Hawaii .", "東京 is the capital of Japan .",
             "EU rejects German call to boycott British lamb ."]
OPEN_ENTITY = [
    {"sent": "Beyoncé lives in Los Angeles.", "start": 0, "end": 7, "labels": ["person", "entity"]},
    {"sent": "Beyoncé lives in Los Angeles.", "start": 17, "end": 28, "labels": ["location", "place"]},
    {"sent": "The meeting took place on Monday in Paris.", "start": 4, "end": 11, "labels": ["event"]},
    {"sent": "東京 is big.", "start": 0, "end": 2, "labels": []},
]
TACRED = [
    {"id": "a", "token": "Barack Obama was born in Hawaii .".split(), "subj_start": 0, "subj_end": 1,
     "obj_start": 5, "obj_end": 5, "relation": "per:stateorprovince_of_birth"},
    {"id": "b", "token": "He said that Google hired Sundar Pichai .".split(), "subj_start": 5, "subj_end": 6,
     "obj_start": 3, "obj_end": 3, "relation": "per:employee_of"},
    {"id": "c", "token": "The cat sat .".split(), "subj_start": 1, "subj_end": 1, "obj_start": 0, "obj_end": 0,
     "relation": "no_relation"},
]
CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP I-LOC
1996-08-22 CD I-NP O
"""


@pytest.fixture(scope="module")
def luke_dir(tmp_path_factory):
    corpus = SENTENCES + [record["sent"] for record in OPEN_ENTITY] + CONLL.split("\n") + [
        " ".join(record["token"]) for record in TACRED]
    return train_luke(corpus * 5, tmp_path_factory.mktemp("luke"), 400)


@pytest.fixture(scope="module")
def tokenizer(luke_dir):
    return load_tokenizer(luke_dir)


def _write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False), "utf-8")
    return path


def _mention_tokens(tokenizer, columns, row, entity):
    """The token strings an entity's positions point at."""
    ids = columns["input_ids"][row]
    return [tokenizer.backend.id_to_token(int(ids[i])) for i in columns["entity_position_ids"][row, entity] if i >= 0]


def test_open_entity_features(tmp_path, luke_dir, tokenizer):
    source = _write(tmp_path / "train.json", OPEN_ENTITY)
    options = EntityTaskOptions(max_seq_length=24, max_entity_length=1)
    manifest = create_open_entity_data(str(source), str(luke_dir), str(tmp_path / "out"), options)
    columns = load_task_columns(str(tmp_path / "out"))
    assert manifest["labels"] == list(TYPES) and manifest["rows"] == 4 and manifest["multi_label"]
    assert manifest["entity_vocab"]["mask_id"] == tokenizer.entity_vocab.mask_id
    assert columns["entity_position_ids"].shape == (4, 1, 30) and columns["label_ids"].shape == (4, 9)
    assert columns["label_ids"][0].tolist() == [int(name in ("person", "entity")) for name in TYPES]
    assert columns["label_ids"][3].tolist() == [0] * 9
    for row, record in enumerate(OPEN_ENTITY):
        expected = tokenizer.encode(record["sent"], entity_spans=[(record["start"], record["end"])],
                                    task="entity_classification", max_length=24, padding=True, max_entity_length=1)
        assert columns["input_ids"][row].tolist() == expected.ids
        assert columns["entity_ids"][row].tolist() == [tokenizer.entity_vocab.mask_id]
        tokens = _mention_tokens(tokenizer, columns, row, 0)
        assert tokens[0] == tokens[-1] == "<ent>"
        assert tokenizer.backend.decoder.decode(tokens[1:-1]).strip() == record["sent"][record["start"]:record["end"]]


def test_open_entity_truncated_mentions_skipped_in_train_kept_in_eval(tmp_path, luke_dir):
    source = _write(tmp_path / "train.json", OPEN_ENTITY)
    options = EntityTaskOptions(max_seq_length=6, max_entity_length=1)
    train = create_open_entity_data(str(source), str(luke_dir), str(tmp_path / "train"), options)
    assert train["skipped"]["mention_beyond_max_seq_length"] == 4 - train["rows"] > 0
    evaluation = create_open_entity_data(str(source), str(luke_dir), str(tmp_path / "eval"), options, split="eval",
                                         label_file=str(tmp_path / "train"))
    assert evaluation["rows"] == 4
    columns = load_task_columns(str(tmp_path / "eval"), ["entity_attention_mask", "entity_ids"])
    assert columns["entity_attention_mask"][:, 0].sum() == train["rows"]


def test_tacred_text_and_spans_are_luke_readers(tmp_path, luke_dir, tokenizer):
    source = _write(tmp_path / "train.json", TACRED)
    examples = read_tacred(str(source))
    assert examples[0].text == "Barack Obama was born in Hawaii ."
    assert examples[0].text[slice(*examples[0].subject)] == "Barack Obama"
    assert examples[1].text[slice(*examples[1].object)] == "Google"
    options = EntityTaskOptions(max_seq_length=48, max_entity_length=2)
    manifest = create_tacred_data(str(source), str(luke_dir), str(tmp_path / "out"), options)
    assert manifest["rows"] == 3
    columns = load_task_columns(str(tmp_path / "out"))
    assert len(RELATIONS) == 42 and manifest["labels"][0] == "no_relation" and manifest["no_relation_id"] == 0
    assert columns["label_ids"].tolist() == [RELATIONS.index(record["relation"]) for record in TACRED]
    vocab = tokenizer.entity_vocab
    assert columns["entity_ids"].tolist() == [[vocab.mask_id, vocab.mask2_id]] * 3
    for row, example in enumerate(examples):
        for entity, (marker, span) in enumerate([("<ent>", example.subject), ("<ent2>", example.object)]):
            tokens = _mention_tokens(tokenizer, columns, row, entity)
            assert tokens[0] == tokens[-1] == marker
            assert tokenizer.backend.decoder.decode(tokens[1:-1]).strip() == example.text[slice(*span)]


def test_conll_candidates_labels_and_chunks(tmp_path, luke_dir, tokenizer):
    source = _write(tmp_path / "train.txt", CONLL)
    documents = read_conll_documents(str(source))
    assert [len(document) for document in documents] == [2, 1]
    assert documents[0][0].tags == ["B-ORG", "O", "B-MISC", "O", "O"]  # IOB1 read as BIO
    options = EntityTaskOptions(max_seq_length=64, max_entity_length=4, max_mention_length=30, context="sentence")
    manifest = create_conll_span_data(str(source), str(luke_dir), str(tmp_path / "out"), options)
    columns = load_task_columns(str(tmp_path / "out"))
    assert manifest["labels"] == ["O", "LOC", "MISC", "ORG", "PER"]
    # sentences of 5, 2 and 2 words: 15, 3 and 3 spans; 15 over ceil(15/4) = 4 rows of 4, 4, 4, 3
    assert manifest["counts"]["candidate_spans"] == 21 and manifest["rows"] == 6
    assert columns["example_index"].tolist() == [0, 0, 0, 0, 1, 2]
    assert (columns["label_ids"] >= 0).sum(1).tolist() == [4, 4, 4, 3, 3, 3]
    labels = manifest["labels"]
    found = {}
    for row in range(manifest["rows"]):
        sentence = [s for document in documents for s in document][columns["example_index"][row]]
        for entity, (start, end) in enumerate(columns["entity_spans"][row].tolist()):
            if start < 0:
                assert columns["entity_attention_mask"][row, entity] == 0
                assert columns["entity_ids"][row, entity] == tokenizer.entity_vocab.pad_id
                continue
            tokens = _mention_tokens(tokenizer, columns, row, entity)
            assert tokenizer.backend.decoder.decode(tokens).strip() == " ".join(sentence.words[start:end])
            found[(int(columns["example_index"][row]), start, end)] = labels[columns["label_ids"][row, entity]]
    entities = {key: value for key, value in found.items() if value != "O"}
    assert entities == {(0, 0, 1): "ORG", (0, 2, 3): "MISC", (1, 0, 2): "PER", (2, 0, 1): "LOC"}
    assert columns["tags"][0] == "B-ORG O B-MISC O O"


def test_conll_document_context_and_long_entities(tmp_path, luke_dir, tokenizer):
    source = _write(tmp_path / "train.txt", CONLL)
    words = "EU rejects German call . Peter Blackburn".split()
    lengths = {word: len(tokenizer.backend.encode(" " + word, add_special_tokens=False).ids)
               for word in words + ["BRUSSELS", "1996-08-22"]}
    longest = max(lengths.values())  # every word a candidate; "Peter Blackburn" longer than one mention
    assert lengths["Peter"] + lengths["Blackburn"] > longest
    options = EntityTaskOptions(max_seq_length=64, max_entity_length=128, max_mention_length=longest,
                                context="document")
    manifest = create_conll_span_data(str(source), str(luke_dir), str(tmp_path / "out"), options)
    columns = load_task_columns(str(tmp_path / "out"))
    assert columns["example_index"].tolist() == [0, 1, 2]
    document = "".join(" " + word for word in words)
    expected = tokenizer.encode(document, entity_spans=[(1, 3)], task="entity_span_classification")
    for row in (0, 1):  # both sentences of the first document see the whole document
        assert columns["input_ids"][row, :columns["input_mask"][row].sum()].tolist() == expected.ids
    assert manifest["handled"]["gold_entities_not_candidates"] == 1
    assert columns["tags"][1] == "B-PER I-PER"
    peter = _mention_tokens(tokenizer, columns, 1, 0)
    assert tokenizer.backend.decoder.decode(peter).strip() == "Peter"


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3")
    return subprocess.run([sys.executable, os.path.join(ROOT, "create_data.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def test_cli_writes_features_and_bad_input_is_one_line(tmp_path, luke_dir):
    good = _write(tmp_path / "train.json", TACRED)
    made = _cli("tacred", "--input", good, "--model_dir", luke_dir, "--output", tmp_path / "ok", "--max_seq_length", 32)
    assert made.returncode == 0, made.stderr
    assert read_task_manifest(str(tmp_path / "ok"), "tacred")["rows"] == 3
    bad_record = _write(tmp_path / "bad.json", [{**TACRED[0], "subj_end": 40}])
    not_json = _write(tmp_path / "bad2.json", "{not json")
    plain = tmp_path / "plain"
    train_luke(SENTENCES, plain, 300)
    (plain / "entity_vocab.json").unlink()
    no_mask = tmp_path / "no_mask"
    train_luke(SENTENCES, no_mask, 300, entities=["[PAD]", "[UNK]", "Paris"])
    cases = [("tacred", bad_record, luke_dir, "subj_start/subj_end"), ("open_entity", not_json, luke_dir, "line 1"),
             ("tacred", good, plain, "not a LUKE model directory"), ("tacred", good, no_mask, "[MASK]"),
             ("open_entity", good, luke_dir, "field 'sent'")]
    for command, source, model_dir, expected in cases:
        out = tmp_path / f"out_{command}_{source.stem}_{model_dir.name}"
        done = _cli(command, "--input", source, "--model_dir", model_dir, "--output", out)
        assert done.returncode == 2 and expected in done.stderr, (command, source, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_eval_split_needs_train_labels_and_unknown_labels_are_errors(tmp_path, luke_dir):
    source = _write(tmp_path / "dev.json", [{**TACRED[0], "relation": "per:favourite_colour"}])
    options = EntityTaskOptions(max_seq_length=32, max_entity_length=2)
    with pytest.raises(UserError, match="per:favourite_colour"):
        create_tacred_data(str(source), str(luke_dir), str(tmp_path / "out"), options)
    conll = _write(tmp_path / "dev.txt", CONLL)
    with pytest.raises(UserError, match="train split's labels"):
        create_conll_span_data(str(conll), str(luke_dir), str(tmp_path / "out"),
                               EntityTaskOptions(64, 8, 16), split="eval")
    assert not (tmp_path / "out").exists()


def test_entity_position_ids_come_back_in_their_shape(tmp_path, luke_dir):
    source = _write(tmp_path / "train.json", TACRED)
    create_tacred_data(str(source), str(luke_dir), str(tmp_path / "out"), EntityTaskOptions(32, 2, 7))
    manifest = read_task_manifest(str(tmp_path / "out"))
    assert manifest["columns"]["entity_position_ids"] == {"type": "int32", "shape": [2, 7]}
    columns = load_task_columns(str(tmp_path / "out"), ["entity_position_ids"])
    assert columns["entity_position_ids"].shape == (3, 2, 7) and np.all(columns["entity_position_ids"] >= -1)
