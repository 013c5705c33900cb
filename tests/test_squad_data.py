"""SQuAD / CMRC2018 data: reader, doc_stride features (WordPiece, byte-level BPE, SentencePiece), postprocessing."""
import json
import random

import numpy as np
import pytest
from tokenizers import Tokenizer, processors

from src.data.tasks.squad import SquadExample, SquadOptions, read_squad
from src.data.tasks.squad_features import UNIQUE_ID_BASE, build_squad_features, eval_columns
from src.data.tasks.squad_postprocess import postprocess_squad, write_predictions
from src.data.tasks.squad_records import create_squad_data
from src.data.tasks.task_records import load_task_columns, read_task_manifest
from src.data.tokenization import load_tokenizer
from src.errors import UserError
from tiny_tokenizers import train_bpe, train_sentencepiece, train_wordpiece

KINDS = ("wordpiece", "bpe", "sentencepiece", "bpe_untrimmed")
WORDS = ("the denver broncos defeated carolina panthers in super bowl at levi's stadium on february 7, 2016 . "
         "Café naïve Ångström résumé 1,000 people (about 70%) watched the game ; it was \"historic\" — said "
         "NFL officials, and the MVP was Von Miller 😀 🎉fans").split()
CHINESE = "我爱北京天安门，北京是中国的首都。长城很长，故宫很大。"
OPTIONS = SquadOptions(max_seq_length=48, doc_stride=12, max_query_length=10)


def _context(rng: random.Random, words: int) -> str:
    """A context of English-like words with irregular spacing (double spaces, a tab, a full-width space)."""
    spaces = [" "] * 20 + ["  ", "\t", "\u3000 "]
    return "".join(rng.choice(WORDS) + rng.choice(spaces) for _ in range(words)).strip()


def _word_spans(context: str) -> list[tuple[int, int]]:
    """[start, end) of every whitespace-separated word."""
    spans, position = [], 0
    for word in context.split():
        position = context.index(word, position)
        spans.append((position, position + len(word)))
        position += len(word)
    return spans


def _examples(seed: int = 0, count: int = 12) -> list[SquadExample]:
    """Long contexts (several windows each) with word-aligned answers of 1-3 words at random places."""
    rng = random.Random(seed)
    examples = []
    for n in range(count):
        context = _context(rng, rng.randint(60, 110))
        spans = _word_spans(context)
        first = rng.randrange(len(spans) - 3)
        begin, end = spans[first][0], spans[first + rng.randint(0, 2)][1]
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + "?"
        examples.append(SquadExample(f"q{n}", "t", question, context, ((context[begin:end], begin),), False))
    return examples


def _squad_file(path, paragraphs: list[dict]) -> str:
    """Write a SQuAD-format file with one article holding the paragraphs."""
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}),
                    encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """One tiny tokenizer per kind, trained on text like the test contexts, loaded the project's way."""
    root = tmp_path_factory.mktemp("squad_tokenizers")
    rng = random.Random(1)
    corpus = [_context(rng, 40) for _ in range(60)] + [CHINESE] * 5
    made = {kind: root / kind for kind in KINDS}
    train_wordpiece(corpus, made["wordpiece"], 400)
    train_bpe(corpus, made["bpe"], 600)
    train_sentencepiece(corpus, made["sentencepiece"], 150, split_by_number=False)
    made["bpe_untrimmed"].mkdir()
    _untrimmed_bpe(made["bpe"], made["bpe_untrimmed"])
    return {kind: load_tokenizer(path) for kind, path in made.items()} | {"dirs": made}


def _untrimmed_bpe(source, target) -> None:
    """A tokenizer.json of the BPE model whose offsets keep the leading space ('Ġword' covers ' word')."""
    bpe = load_tokenizer(source)
    backend = Tokenizer.from_str(bpe.backend.to_str())
    backend.post_processor = processors.RobertaProcessing(
        (bpe.sep_token, bpe.sep_token_id), (bpe.cls_token, bpe.cls_token_id), trim_offsets=False)
    backend.save(str(target / "tokenizer.json"))


def _cut(context: str, offsets: np.ndarray, start: int, end: int) -> str:
    """The context text a token span covers."""
    return context[offsets[start, 0]:offsets[end, 1]]


@pytest.mark.parametrize("kind", KINDS)
def test_training_spans_map_back_to_exactly_the_answer(tokenizers, kind):
    examples = _examples()
    train = build_squad_features(examples, tokenizers[kind], OPTIONS, is_training=True)
    evaluation = build_squad_features(examples, tokenizers[kind], OPTIONS, is_training=False)
    assert np.array_equal(train.input_ids, evaluation.input_ids)
    windows = np.bincount(evaluation.example_index)
    assert windows.min() >= 3, "every context should need several windows"
    found = np.zeros(len(examples), dtype=bool)
    for row in range(len(train)):
        start, end = train.start_positions[row], train.end_positions[row]
        if start == 0:
            assert end == 0
            continue
        example = examples[evaluation.example_index[row]]
        assert 0 < start <= end
        assert _cut(example.context, evaluation.token_offsets[row], start, end) == example.answers[0][0]
        found[evaluation.example_index[row]] = True
    assert found.all()
    assert train.counts["answer_partial_token"] == 0
    assert train.counts["window_without_answer"] == int((train.start_positions == 0).sum())


@pytest.mark.parametrize("kind", KINDS)
def test_windows_step_by_doc_stride_and_cover_every_context_token(tokenizers, kind):
    tokenizer = tokenizers[kind]
    examples = _examples(seed=2)
    features = build_squad_features(examples, tokenizer, OPTIONS, is_training=False)
    for index, example in enumerate(examples):
        full = tokenizer.backend.encode(example.context, add_special_tokens=False).ids
        rows = np.flatnonzero(features.example_index == index)
        covered = np.zeros(len(full), dtype=bool)
        for window, row in enumerate(rows):
            in_context = features.token_offsets[row, :, 0] >= 0
            ids = features.input_ids[row][in_context].tolist()
            first = window * OPTIONS.doc_stride
            assert ids == full[first:first + len(ids)]
            assert np.flatnonzero(in_context).tolist() == list(range(in_context.argmax(), in_context.argmax()
                                                                      + len(ids)))
            covered[first:first + len(ids)] = True
        assert covered.all()
        assert first + len(ids) == len(full)


@pytest.mark.parametrize("kind", KINDS)
def test_a_single_window_matches_the_tokenizer_pair_encoding(tokenizers, kind):
    tokenizer = tokenizers[kind]
    examples = [SquadExample("a", "", "who won the super bowl?", "the denver broncos won, in 2016 .",
                             (("denver broncos", 4),), False),
                SquadExample("b", "", "CAFÉ naïve", "Café  naïve\tÅngström résumé", (), True)]
    options = SquadOptions(max_seq_length=64, doc_stride=12, max_query_length=30)
    features = build_squad_features(examples, tokenizer, options, is_training=False)
    assert len(features) == 2 and features.counts["question_truncated"] == 0
    for row, example in enumerate(examples):
        pair = tokenizer.encode(example.question, example.context, max_length=options.max_seq_length, padding=True)
        assert features.input_ids[row].tolist() == pair.ids
        assert features.segment_ids[row].tolist() == pair.type_ids
        assert features.input_mask[row].tolist() == pair.attention_mask
    if kind.startswith("bpe"):
        assert not features.segment_ids.any(), "RoBERTa's template gives every token type 0"
    else:
        assert features.segment_ids.any()


def test_question_is_cut_to_max_query_length(tokenizers):
    tokenizer = tokenizers["wordpiece"]
    long_question = " ".join(["denver"] * 30)
    example = SquadExample("a", "", long_question, "the broncos won", (("broncos", 4),), False)
    features = build_squad_features([example], tokenizer, OPTIONS, is_training=True)
    assert features.counts["question_truncated"] == 1
    question_ids = tokenizer.backend.encode(long_question, add_special_tokens=False).ids[:OPTIONS.max_query_length]
    assert features.input_ids[0, 1:1 + OPTIONS.max_query_length].tolist() == question_ids
    assert features.input_ids[0, 1 + OPTIONS.max_query_length] == tokenizer.sep_token_id
    assert features.start_positions[0] == 1 + OPTIONS.max_query_length + 1 + 1


@pytest.mark.parametrize("kind", KINDS)
def test_unanswerable_and_out_of_window_features_point_at_zero(tokenizers, kind):
    answerable = _examples(seed=3, count=1)[0]
    impossible = SquadExample("none", "", "what is not there?", answerable.context, (), True)
    features = build_squad_features([answerable, impossible], tokenizers[kind], OPTIONS, is_training=True)
    evaluation = build_squad_features([answerable, impossible], tokenizers[kind], OPTIONS, is_training=False)
    of_impossible = evaluation.example_index == 1
    assert of_impossible.sum() >= 3
    assert not features.start_positions[of_impossible].any() and not features.end_positions[of_impossible].any()
    with_answer = features.start_positions[~of_impossible] > 0
    assert 0 < with_answer.sum() < len(with_answer)
    assert features.counts["window_without_answer"] == int((~with_answer).sum())
    assert features.input_ids[0, 0] == tokenizers[kind].cls_token_id


def test_misaligned_answers_are_realigned_or_counted_and_kept_for_eval(tmp_path, tokenizers):
    context = "the broncos won . later the panthers lost and the broncos cheered ."
    path = _squad_file(tmp_path / "train.json", [{"context": context, "qas": [
        {"id": "ok", "question": "who won?", "answers": [{"text": "broncos", "answer_start": 4}]},
        {"id": "near", "question": "who cheered?", "answers": [{"text": "broncos", "answer_start": 48}]},
        {"id": "gone", "question": "who?", "answers": [{"text": "dolphins", "answer_start": 4},
                                                        {"text": "", "answer_start": 0}]},
    ]}])
    examples, counts = read_squad(path)
    assert counts == {"answer_realigned": 1, "answer_misaligned": 2}
    by_id = {example.id: example for example in examples}
    assert by_id["ok"].answers == (("broncos", 4),)
    assert by_id["near"].answers == (("broncos", context.rindex("broncos")),)
    assert by_id["gone"].answers == (("dolphins", -1), ("", -1))
    tokenizer = tokenizers["wordpiece"]
    train = build_squad_features(examples, tokenizer, OPTIONS, is_training=True)
    assert train.counts["no_usable_answer"] == 1 and len(train) == 2
    evaluation = build_squad_features(examples, tokenizer, OPTIONS, is_training=False)
    assert sorted(set(evaluation.example_index.tolist())) == [0, 1, 2]
    offsets = evaluation.token_offsets[1]
    assert _cut(context, offsets, train.start_positions[1], train.end_positions[1]) == "broncos"
    assert offsets[train.start_positions[1], 0] == context.rindex("broncos")


def test_cmrc_chinese_answers_with_approximate_starts(tmp_path, tokenizers):
    context = CHINESE * 3
    path = _squad_file(tmp_path / "cmrc.json", [{"id": "P1", "context": context, "qas": [
        {"id": "Q1", "question": "中国的首都是哪里？", "answers": [{"text": "北京", "answer_start": 12}]},
        {"id": "Q2", "question": "什么很长？", "answers": [{"text": "长城", "answer_start": 40}]},
    ]}])
    examples, counts = read_squad(path)
    assert counts["answer_realigned"] == 2
    features = build_squad_features(examples, tokenizers["wordpiece"], OPTIONS, is_training=True)
    evaluation = build_squad_features(examples, tokenizers["wordpiece"], OPTIONS, is_training=False)
    texts = {_cut(context, evaluation.token_offsets[row], features.start_positions[row], features.end_positions[row])
             for row in np.flatnonzero(features.start_positions)}
    assert texts == {"北京", "长城"}


def test_malformed_json_and_missing_keys_are_user_errors_naming_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [\n  {"title": "x",, }]}', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.json: line 2 column"):
        read_squad(bad)
    with pytest.raises(UserError, match=r"top\.json: top level has no 'data' list"):
        read_squad(_write(tmp_path / "top.json", [1, 2]))
    missing = _squad_file(tmp_path / "missing.json", [{"context": "c", "qas": [{"id": "a", "answers": []}]}])
    with pytest.raises(UserError, match=r"missing\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]: missing 'question'"):
        read_squad(missing)
    no_context = _squad_file(tmp_path / "noctx.json", [{"qas": []}])
    with pytest.raises(UserError, match=r"noctx\.json: data\[0\]\.paragraphs\[0\]: missing 'context'"):
        read_squad(no_context)
    wrong_type = _squad_file(tmp_path / "type.json", [{"context": "c", "qas": [
        {"id": "a", "question": "q", "answers": [{"text": "c", "answer_start": "0"}]}]}])
    with pytest.raises(UserError, match=r"type\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\]"
                                        r"\.answer_start: expected a whole number"):
        read_squad(wrong_type)
    with pytest.raises(UserError, match=r"absent\.json: no such file"):
        read_squad(tmp_path / "absent.json")


def _write(path, content) -> str:
    """Write any JSON value to path."""
    path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


def test_empty_contexts_questions_and_duplicate_ids_are_counted_not_fatal(tmp_path, tokenizers):
    path = _squad_file(tmp_path / "empty.json", [
        {"context": "  \n\t ", "qas": [{"id": "e1", "question": "q?", "answers": []},
                                      {"id": "e2", "question": "q?", "answers": []}]},
        {"context": "the broncos won", "qas": [{"id": "e3", "question": "   ", "answers": []},
                                               {"id": "ok", "question": "who?", "answers": [
                                                   {"text": "broncos", "answer_start": 4}]},
                                               {"id": "ok", "question": "again?", "answers": []}]},
        {"context": "\x00\x01", "qas": [{"id": "ctrl", "question": "what?", "answers": [
            {"text": "\x00", "answer_start": 0}]}]},
    ])
    examples, counts = read_squad(path)
    assert [example.id for example in examples] == ["ok", "ctrl"]
    assert counts == {"empty_context": 2, "empty_question": 1, "duplicate_id": 1}
    tokenizer = tokenizers["wordpiece"]
    train = build_squad_features(examples, tokenizer, OPTIONS, is_training=True)
    assert train.counts["answer_not_tokenized"] == 1 and len(train) == 1
    evaluation = build_squad_features(examples, tokenizer, OPTIONS, is_training=False)
    assert evaluation.example_index.tolist() == [0, 1]
    assert (evaluation.token_offsets[1] == -1).all(), "a context of control characters has no tokens"
    logits = np.zeros(evaluation.input_ids.shape)
    predictions, nbest, _ = postprocess_squad(eval_columns(evaluation, examples), logits, logits)
    assert predictions["ctrl"] == "" and predictions["ok"] in examples[0].context.split()
    assert nbest["ctrl"] == [{"text": "", "probability": 1.0, "start_logit": 0.0, "end_logit": 0.0}]


def test_options_that_would_skip_context_tokens_are_refused(tokenizers):
    example = _examples(count=1)
    with pytest.raises(UserError, match=r"--doc_stride 40: larger than the context room"):
        build_squad_features(example, tokenizers["wordpiece"], SquadOptions(48, 40, 10), is_training=True)
    with pytest.raises(UserError, match=r"--max_seq_length 12: leaves no room"):
        build_squad_features(example, tokenizers["wordpiece"], SquadOptions(12, 4, 10), is_training=True)


def _answer_rows(features, columns, example_index: int, text: str) -> list[tuple[int, int, int]]:
    """(row, start token, end token) of every window holding `text` as a token span."""
    context = columns["context"][np.flatnonzero(features.example_index == example_index)[0]]
    begin = context.index(text)
    found = []
    for row in np.flatnonzero(features.example_index == example_index):
        offsets = features.token_offsets[row]
        starts = np.flatnonzero(offsets[:, 0] == begin)
        ends = np.flatnonzero(offsets[:, 1] == begin + len(text))
        if len(starts) and len(ends):
            found.append((int(row), int(starts[0]), int(ends[-1])))
    return found


@pytest.fixture(scope="module")
def evaluated(tokenizers):
    """Eval features and columns of two long examples (WordPiece)."""
    examples = _examples(seed=5, count=2)
    features = build_squad_features(examples, tokenizers["wordpiece"], OPTIONS, is_training=False)
    return examples, features, eval_columns(features, examples)


def test_postprocess_picks_the_best_span_across_windows(evaluated):
    examples, features, columns = evaluated
    noise = np.random.default_rng(0).normal(scale=0.1, size=(2, *features.input_ids.shape))
    start_logits, end_logits = noise.astype(np.float32)
    answer = examples[0].answers[0][0]
    (row, start, end), *_ = _answer_rows(features, columns, 0, answer)
    start_logits[row, start], end_logits[row, end] = 5.0, 4.0
    decoy_row = np.flatnonzero(features.example_index == 0)[-1]
    assert decoy_row != row
    decoy = int(np.flatnonzero(features.token_offsets[decoy_row, :, 0] >= 0)[0])
    start_logits[decoy_row, decoy], end_logits[decoy_row, decoy] = 4.0, 4.0
    start_logits[:, 0] = end_logits[:, 0] = 10.0  # [CLS] is never a span in v1
    predictions, nbest, null_odds = postprocess_squad(columns, start_logits, end_logits, n_best_size=5)
    assert predictions[examples[0].id] == answer
    assert list(predictions) == [example.id for example in examples] and null_odds == {}
    entries = nbest[examples[0].id]
    assert entries[0] == {"text": answer, "probability": pytest.approx(entries[0]["probability"]),
                          "start_logit": 5.0, "end_logit": 4.0}
    assert len(entries) == 5 and len({entry["text"] for entry in entries}) == 5
    scores = [entry["start_logit"] + entry["end_logit"] for entry in entries]
    assert scores == sorted(scores, reverse=True)
    assert sum(entry["probability"] for entry in entries) == pytest.approx(1.0)
    shuffled = np.random.default_rng(0).permutation(len(features))
    again = postprocess_squad(columns, start_logits[shuffled], end_logits[shuffled], n_best_size=5,
                              result_unique_ids=features.unique_ids[shuffled])
    assert again[0] == predictions
    assert features.unique_ids[0] == UNIQUE_ID_BASE


def test_postprocess_obeys_max_answer_length(evaluated):
    examples, features, columns = evaluated
    row = int(np.flatnonzero(features.example_index == 1)[0])
    context_tokens = np.flatnonzero(features.token_offsets[row, :, 0] >= 0)
    start_logits = np.zeros(features.input_ids.shape)
    end_logits = np.zeros_like(start_logits)
    start_logits[row, context_tokens[0]] = 9.0
    end_logits[row, context_tokens[6]] = 9.0
    end_logits[row, context_tokens[2]] = 1.0
    context = examples[1].context
    offsets = features.token_offsets[row]
    for max_length, last in ((7, 6), (6, 2)):
        predictions, _, _ = postprocess_squad(columns, start_logits, end_logits, max_answer_length=max_length)
        assert predictions[examples[1].id] == _cut(context, offsets, context_tokens[0], context_tokens[last])


def test_postprocess_v2_null_threshold_and_null_odds(evaluated):
    examples, features, columns = evaluated
    qid = examples[0].id
    rows = np.flatnonzero(features.example_index == 0)
    start_logits = np.zeros(features.input_ids.shape)
    end_logits = np.zeros_like(start_logits)
    (row, start, end), *_ = _answer_rows(features, columns, 0, examples[0].answers[0][0])
    start_logits[row, start], end_logits[row, end] = 3.0, 2.0  # best span: 5
    start_logits[rows, 0] = [4.0 + n for n in range(len(rows))]
    end_logits[rows, 0] = 2.5
    start_logits[rows[1], 0] = 3.5  # the null score is the minimum over windows: 3.5 + 2.5 = 6
    for threshold, expected in ((0.0, ""), (0.99, ""), (1.0, examples[0].answers[0][0]), (2.0,
                                                                                          examples[0].answers[0][0])):
        predictions, nbest, null_odds = postprocess_squad(columns, start_logits, end_logits,
                                                          version_2_with_negative=True,
                                                          null_score_diff_threshold=threshold)
        assert null_odds[qid] == pytest.approx(1.0)
        assert predictions[qid] == expected
    assert nbest[qid][0] == {"text": "", "probability": pytest.approx(nbest[qid][0]["probability"]),
                             "start_logit": 3.5, "end_logit": 2.5}
    assert nbest[qid][1]["text"] == examples[0].answers[0][0]


def test_write_predictions_writes_the_official_files(tmp_path):
    written = write_predictions(tmp_path / "out", {"q1": "ans", "q2": ""},
                                {"q1": [{"text": "ans", "probability": 1.0, "start_logit": 1.0, "end_logit": 2.0}]},
                                {"q1": -1.5, "q2": 2.0})
    assert [path.name for path in written] == ["predictions.json", "nbest_predictions.json", "null_odds.json"]
    assert json.loads(written[0].read_text(encoding="utf-8")) == {"q1": "ans", "q2": ""}
    assert json.loads(written[2].read_text(encoding="utf-8")) == {"q1": -1.5, "q2": 2.0}
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted(path.name for path in written)
    assert [p.name for p in write_predictions(tmp_path / "v1", {"q": "a"}, {"q": []}, {})] == [
        "predictions.json", "nbest_predictions.json"]


def test_create_squad_data_round_trip(tmp_path, tokenizers):
    paragraphs = [{"context": example.context, "qas": [
        {"id": example.id, "question": example.question,
         "answers": [{"text": text, "answer_start": start} for text, start in example.answers]},
        {"id": example.id + "-none", "question": "is it there?", "answers": [], "is_impossible": True}]}
        for example in _examples(seed=7, count=3)]
    source = _squad_file(tmp_path / "v2.json", paragraphs)
    model_dir = tokenizers["dirs"]["sentencepiece"]
    examples, _ = read_squad(source)
    tokenizer = tokenizers["sentencepiece"]
    for split in ("train", "eval"):
        manifest = create_squad_data(source, str(model_dir), str(tmp_path / split), OPTIONS, split)
        features = build_squad_features(examples, tokenizer, OPTIONS, is_training=split == "train")
        expected = features.columns() if split == "train" else eval_columns(features, examples)
        loaded = load_task_columns(str(tmp_path / split))
        assert sorted(loaded) == sorted(expected)
        for name, values in expected.items():
            assert np.array_equal(loaded[name], values), name
        assert manifest == read_task_manifest(str(tmp_path / split), task="squad")
        assert manifest["split"] == split and manifest["version_2_with_negative"] is True
        assert manifest["counts"] == {"examples": 6, "features": len(features), "impossible_examples": 3}
        assert manifest["options"] == {"max_seq_length": 48, "doc_stride": 12, "max_query_length": 10}
        assert manifest["tokenizer"]["fingerprint"] == tokenizer.fingerprint()
        assert manifest["skipped"] == {} and manifest["handled"] == dict(sorted(features.counts.items()))
        assert (split == "train") == (manifest["handled"].get("window_without_answer", 0) > 0)
    logits = np.random.default_rng(1).normal(size=loaded["input_ids"].shape)
    from_folder = postprocess_squad(loaded, logits, -logits, version_2_with_negative=True)
    in_memory = postprocess_squad(expected, logits, -logits, version_2_with_negative=True)
    assert from_folder == in_memory and len(from_folder[0]) == 6
    with pytest.raises(UserError, match="output exists"):
        create_squad_data(source, str(model_dir), str(tmp_path / "eval"), OPTIONS, "eval")
    with pytest.raises(UserError, match="--split 'dev'"):
        create_squad_data(source, str(model_dir), str(tmp_path / "dev"), OPTIONS, "dev")
