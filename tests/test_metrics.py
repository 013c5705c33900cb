"""Official metrics: SQuAD v1.1/v2.0, CMRC 2018, entity-level NER (against seqeval itself),
classification metrics (against hand-worked values, scipy and sklearn), and run_eval.py's
file-scoring mode run as a command.

The SQuAD references below are written out in the plain loop form the official scripts
describe, separately from src/metrics, and are compared for exact float equality.
"""
import collections
import json
import math
import random
import re
import string
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import seqeval.metrics
import sklearn.metrics
from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities

from src.errors import UserError
from src.metrics import classification, cmrc, ner, squad

ROOT = Path(__file__).resolve().parent.parent


# ================================================================ reference SQuAD scorers

def ref_normalize(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def ref_f1(pred_tokens, gold_tokens):
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0
    p = 1.0 * same / len(pred_tokens)
    r = 1.0 * same / len(gold_tokens)
    return (2 * p * r) / (p + r)


def ref_v1(data, preds):
    em = f1 = total = 0
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in preds:
                    continue
                pred = preds[qa["id"]]
                golds = [a["text"] for a in qa["answers"]]
                em += max([ref_normalize(pred) == ref_normalize(g) for g in golds])
                f1 += max([ref_f1(ref_normalize(pred).split(), ref_normalize(g).split()) for g in golds])
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total}


def ref_v2(data, preds, na_probs=None, thresh=1.0):
    """evaluate-v2.0.py's algorithm (every question must have a prediction)."""
    has_ans, exact_raw, f1_raw = {}, {}, {}
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qid = qa["id"]
                has_ans[qid] = len(qa["answers"]) > 0
                golds = [a["text"] for a in qa["answers"] if ref_normalize(a["text"])] or [""]
                pred = preds[qid]
                exact_raw[qid] = max(int(ref_normalize(g) == ref_normalize(pred)) for g in golds)
                scores = []
                for g in golds:
                    gt, pt = ref_normalize(g).split(), ref_normalize(pred).split()
                    scores.append(int(gt == pt) if not gt or not pt else ref_f1(pt, gt))
                f1_raw[qid] = max(scores)
    probs = na_probs if na_probs is not None else {k: 0.0 for k in preds}

    def thresholded(raw):
        return {q: (float(not has_ans[q]) if probs[q] > thresh else s) for q, s in raw.items()}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    out = collections.OrderedDict()
    out["exact"] = 100.0 * sum(exact.values()) / len(exact)
    out["f1"] = 100.0 * sum(f1.values()) / len(f1)
    out["total"] = len(exact)
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q, h in has_ans.items() if h == wanted]
        if qids:
            out[name + "_exact"] = 100.0 * sum(exact[q] for q in qids) / len(qids)
            out[name + "_f1"] = 100.0 * sum(f1[q] for q in qids) / len(qids)
            out[name + "_total"] = len(qids)
    if na_probs is not None:
        for key, raw in (("exact", exact_raw), ("f1", f1_raw)):
            current = best = sum(1 for h in has_ans.values() if not h)
            best_t = 0.0
            for qid in sorted(na_probs, key=lambda k: na_probs[k]):
                if qid not in raw:
                    continue
                current += raw[qid] if has_ans[qid] else (-1 if preds[qid] else 0)
                if current > best:
                    best, best_t = current, na_probs[qid]
            out["best_" + key] = 100.0 * best / len(raw)
            out["best_" + key + "_thresh"] = best_t
    return out


def squad_file(questions, version="1.1"):
    """questions: (qid, [gold texts]) -> a SQuAD JSON object, two questions per paragraph."""
    paragraphs = []
    for i in range(0, len(questions), 2):
        paragraphs.append({"context": "ctx", "qas": [
            {"id": qid, "question": "q?", "answers": [{"text": t, "answer_start": 0} for t in golds],
             **({"is_impossible": not golds} if version != "1.1" else {})}
            for qid, golds in questions[i:i + 2]]})
    return {"version": version, "data": [{"title": "t", "paragraphs": paragraphs}]}


WORDS = ["the", "The", "a", "An", "THE", "cat", "Cat,", "dog.", "(dog)", "café", "Café", "naïve", "北京",
         "北京。", "1,000", "U.S.", "an-apple", "theory", "another", "x", "y", "z", "--", "'s", "\tz", "é"]


def random_text(rng, max_words=5):
    return rng.choice([" ", "  ", "\u00a0"]).join(rng.choice(WORDS) for _ in range(rng.randint(0, max_words)))


def random_squad(rng, n, unanswerable=0.0, duplicates=False):
    questions = []
    for i in range(n):
        qid = f"q{rng.randint(0, n // 2)}" if duplicates else f"q{i}"
        golds = [] if rng.random() < unanswerable else [random_text(rng) or "cat" for _ in range(rng.randint(1, 3))]
        questions.append((qid, golds))
    return questions


# ================================================================ SQuAD

@pytest.mark.parametrize("text, expected", [
    ("The Cat", "cat"),
    ("  A  an-the  ", "anthe"),            # punctuation goes before articles: "an-the" is one word
    ("Theory of the atom!", "theory of atom"),
    ("Café, THE naïve (x)", "café naïve x"),
    ("北京。", "北京。"),                     # CJK punctuation is not string.punctuation
    ("a\tb\u00a0c\nd", "b c d"),
    ("", ""),
])
def test_normalize_answer(text, expected):
    assert squad.normalize_answer(text) == expected == ref_normalize(text)


def test_v1_hand_worked():
    data = squad_file([("q1", ["The Cat", "a dog"]), ("q2", ["Barack Obama"]), ("q3", ["Paris"]),
                       ("q4", ["x y", "x y z w"])])["data"]
    preds = {"q1": "cat", "q2": "President Barack Obama Jr.", "q4": "x y z", "extra": "ignored"}
    # q1: exact via "The Cat"; q2: P=2/4, R=2/2; q3: missing; q4: best is vs "x y z w" (P=1, R=3/4)
    f1_q2 = 2 * 0.5 * 1.0 / 1.5
    f1_q4 = 2 * 1.0 * 0.75 / 1.75
    result = squad.evaluate_v1(data, preds)
    assert result == {"exact_match": 100.0 * 1 / 4, "f1": 100.0 * (1 + f1_q2 + f1_q4) / 4}
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 6 / 7) / 4, abs=1e-12)
    assert squad.missing_ids(data, preds) == ["q3"]
    assert squad.unknown_ids(data, preds) == ["extra"]


def test_v1_matches_reference_on_random_files():
    rng = random.Random(1)
    for _ in range(60):
        questions = random_squad(rng, rng.randint(1, 25), duplicates=rng.random() < 0.3)
        data = squad_file(questions)["data"]
        preds = {qid: random_text(rng) for qid, _ in questions if rng.random() < 0.9}
        if rng.random() < 0.5:   # predictions copying a gold answer with noise
            for qid, golds in questions:
                if golds and rng.random() < 0.5:
                    preds[qid] = rng.choice(golds).upper() + rng.choice(["", ".", " the", " x"])
        assert squad.evaluate_v1(data, preds) == ref_v1(data, preds)


def test_v1_leaves_out_unanswerable_questions():
    data = squad_file([("q1", ["cat"]), ("q2", []), ("q3", ["dog"])], version="v2.0")["data"]
    preds = {"q1": "cat", "q2": "", "q3": "bird"}
    assert squad.unanswerable_ids(data) == ["q2"]
    assert squad.evaluate_v1(data, preds) == {"exact_match": 50.0, "f1": 50.0}
    with pytest.raises(UserError, match="no answerable questions"):
        squad.evaluate_v1(squad_file([("q", [])])["data"], {"q": ""})


def test_v2_hand_worked_thresholds():
    data = squad_file([("q1", ["Paris"]), ("q2", ["blue whale"]), ("q3", []), ("q4", [])], "v2.0")["data"]
    preds = {"q1": "Paris", "q2": "whale", "q3": "", "q4": "London"}
    na = {"q1": 0.1, "q2": 0.6, "q3": 0.9, "q4": 0.3}
    f1_q2 = 2 * 1.0 * 0.5 / 1.5
    out = squad.evaluate_v2(data, preds, na)
    assert list(out) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact",
                         "NoAns_f1", "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]
    assert out["exact"] == 50.0 and out["total"] == 4
    assert out["f1"] == 100.0 * (1 + f1_q2 + 1 + 0) / 4
    assert (out["HasAns_exact"], out["HasAns_f1"], out["HasAns_total"]) == (50.0, 100.0 * (1 + f1_q2) / 2, 2)
    assert (out["NoAns_exact"], out["NoAns_f1"], out["NoAns_total"]) == (50.0, 50.0, 2)
    # walk by na_prob: start 2 (both no-answer right); q1 +1 -> 3 at 0.1; q4 "London" -1; q2, q3 add < 1
    assert (out["best_exact"], out["best_exact_thresh"]) == (75.0, 0.1)
    assert (out["best_f1"], out["best_f1_thresh"]) == (75.0, 0.1)
    # threshold 0.5: q2 and q3 are answered empty -> q2 wrong (0.0), q3 right (1.0)
    low = squad.evaluate_v2(data, preds, na, na_prob_thresh=0.5)
    assert (low["exact"], low["f1"], low["HasAns_f1"]) == (50.0, 50.0, 50.0)
    # a later, higher threshold wins when q2 is right and q4's wrong answer is only kept above it
    preds2 = dict(preds, q2="the Blue whale!")
    na2 = dict(na, q4=0.95)
    out2 = squad.evaluate_v2(data, preds2, na2)
    assert (out2["best_exact"], out2["best_exact_thresh"], out2["best_f1"], out2["best_f1_thresh"]) == \
        (100.0, 0.6, 100.0, 0.6)
    assert out == ref_v2(data, preds, na) and out2 == ref_v2(data, preds2, na2)


def test_v2_empty_gold_and_empty_prediction_rules():
    # an answer that normalizes to nothing ("The!") counts as no answer for scoring, yet the
    # question still has answers (HasAns), as in evaluate-v2.0.py
    data = squad_file([("q1", ["The!"]), ("q2", ["cat"]), ("q3", [])], "v2.0")["data"]
    out = squad.evaluate_v2(data, {"q1": "", "q2": "", "q3": "a"})
    assert out["exact"] == out["f1"] == 100.0 * 2 / 3
    assert out["HasAns_total"] == 2 and out["HasAns_exact"] == 50.0 and out["NoAns_exact"] == 100.0
    assert squad.f1_v2("", "") == 1 and squad.f1_v2("cat", "") == 0 and squad.f1_v2("", "the") == 1
    assert squad.f1_v1("", "") == 0   # v1.1 has no such rule


def test_v2_only_answerable_has_no_noans_block():
    data = squad_file([("q1", ["cat"])])["data"]
    assert list(squad.evaluate_v2(data, {"q1": "cat"})) == ["exact", "f1", "total", "HasAns_exact",
                                                             "HasAns_f1", "HasAns_total"]


def test_v2_matches_reference_on_random_files():
    rng = random.Random(2)
    for trial in range(80):
        questions = random_squad(rng, rng.randint(1, 30), unanswerable=0.4, duplicates=trial % 4 == 0)
        data = squad_file(questions, "v2.0")["data"]
        preds = {qid: (random_text(rng) if rng.random() < 0.6 else "") for qid, _ in questions}
        for qid, golds in questions:
            if golds and rng.random() < 0.4:
                preds[qid] = rng.choice(golds) + rng.choice(["", "!", " an"])
        na = None
        if trial % 3:
            # ties on purpose (rounded values): the sort is stable, so file order breaks them
            na = {qid: round(rng.random(), 1) for qid in rng.sample(sorted(preds), len(preds))}
            na["not-a-question"] = 0.05
        thresh = rng.choice([1.0, 0.5, 0.0, -1.0])
        assert list(squad.evaluate_v2(data, preds, na, thresh).items()) == list(ref_v2(data, preds, na, thresh).items())


def test_v2_missing_predictions_are_wrong_at_every_threshold():
    data = squad_file([("q1", ["cat"]), ("q2", ["dog"]), ("q3", []), ("q4", [])], "v2.0")["data"]
    preds = {"q1": "cat", "q3": ""}          # q2 (answerable) and q4 (unanswerable) missing
    na = {"q1": 0.2, "q3": 0.1}
    out = squad.evaluate_v2(data, preds, na)
    assert (out["exact"], out["total"], out["HasAns_exact"], out["NoAns_exact"]) == (50.0, 4, 50.0, 50.0)
    # start 1 (q3 only: the missing q4 is never right); q3 +0 at 0.1; q1 +1 -> 2 at 0.2
    assert (out["best_exact"], out["best_exact_thresh"]) == (50.0, 0.2)
    assert squad.missing_ids(data, preds) == ["q2", "q4"]
    with pytest.raises(UserError, match="nulls.json: no value for 1 predicted"):
        squad.evaluate_v2(data, preds, {"q1": 0.2}, na_prob_source="nulls.json")


@pytest.mark.parametrize("bad, message", [
    ([], "expected a SQuAD JSON object"),
    ({"data": [{"title": "x"}]}, r"data\[0\]: expected an article"),
    ({"data": [{"paragraphs": [{"qas": [{"question": "?"}]}]}]}, r"qas\[0\]: expected a question with a string"),
    ({"data": [{"paragraphs": [{"qas": [{"id": "q", "answers": [{"t": 1}]}]}]}]}, "id q"),
])
def test_bad_squad_files(bad, message):
    with pytest.raises(UserError, match=message):
        squad.check_dataset(bad, "dev.json")


def test_bad_predictions():
    with pytest.raises(UserError, match="p.json: expected a JSON object mapping question id"):
        squad.check_predictions(["a"], "p.json")
    with pytest.raises(UserError, match="prediction for 'q1' is a JSON number"):
        squad.check_predictions({"q1": 3}, "p.json")
    with pytest.raises(UserError, match="value for 'q1' is a JSON string"):
        squad.check_na_probs({"q1": "0.5"}, "n.json")


# ================================================================ CMRC 2018

# NLTK's word_tokenize outputs for these runs (NLTKWordTokenizer, checked against nltk 3.10)
TREEBANK = [
    ("hello, world.", ["hello", ",", "world", "."]), ("don't", ["do", "n't"]), ("1,000", ["1,000"]),
    ("3.5", ["3.5"]), ("u.s.", ["u.s", "."]), ("cannot", ["can", "not"]), ('"hi"', ["``", "hi", "''"]),
    ("(a)", ["(", "a", ")"]), ("$5", ["$", "5"]), ("it's", ["it", "'s"]), ("'tis", ["'", "tis"]),
    ("mr. smith", ["mr.", "smith"]), ("a... b", ["a", "...", "b"]), ("what?!", ["what", "?", "!"]),
    ("'abc'", ["'", "abc", "'"]), ("iphone 6s plus", ["iphone", "6s", "plus"]),
]


@pytest.mark.parametrize("text, words", TREEBANK)
def test_treebank_words(text, words):
    assert cmrc.treebank_words(text) == words


def test_mixed_segmentation_and_punctuation():
    assert cmrc.mixed_segmentation("Hello世界2018年，OK！", drop_punctuation=True) == \
        ["hello", "世", "界", "2018", "年", "ok"]
    # punctuation kept as its own segment unless dropped; a dropped one does not split a run
    assert cmrc.mixed_segmentation("a-b：c") == ["a", "-", "b", "：", "c"]
    assert cmrc.mixed_segmentation("a-b：c", drop_punctuation=True) == ["abc"]
    assert cmrc.mixed_segmentation("a-b，中 c d", drop_punctuation=True) == ["ab", "中", "c", "d"]
    # the official list holds "……" (two characters), so a lone "…" stays
    assert cmrc.remove_punctuation(" 《红楼梦》…… ") == "红楼梦……"
    assert cmrc.remove_punctuation("A-B") == "ab"


def test_cmrc_hand_worked_scores():
    assert cmrc.em_score(["《红楼梦》"], "红楼梦") == 1
    assert cmrc.em_score(["红楼梦", "曹雪芹"], "曹雪芹。") == 1
    assert cmrc.em_score(["红楼梦"], "红楼") == 0
    # longest common substring, not subsequence: 北京/大学 share 2 consecutive segments
    assert cmrc.f1_score(["北京大学"], "北京的大学") == (2 * 0.4 * 0.5) / 0.9
    assert cmrc.f1_score(["上海", "北京大学"], "北京大学") == 1.0
    assert cmrc.f1_score(["北京"], "") == 0
    assert cmrc.f1_score(["nba总冠军"], "NBA 总冠军") == 1.0


def brute_lcs(a, b):
    return max([k for i in range(len(a)) for j in range(len(a) + 1) for k in [j - i]
                if k > 0 and any(a[i:j] == b[s:s + k] for s in range(len(b)))], default=0)


def test_cmrc_f1_matches_brute_force_substrings():
    rng = random.Random(3)
    alphabet = "北京大学上海的人民"
    for _ in range(300):
        def text():
            return "".join(rng.choice([rng.choice(alphabet), " ab ", " cd "]) for _ in range(rng.randint(0, 7)))
        gold, pred = text() or "北", text()
        g, p = [s for s in re.findall(r"[a-z]+|\S", gold)], [s for s in re.findall(r"[a-z]+|\S", pred)]
        common = brute_lcs(g, p)
        precision, recall = common / max(len(p), 1), common / len(g)
        expected = 0 if common == 0 else 2 * precision * recall / (precision + recall)
        assert cmrc.f1_score([gold], pred) == pytest.approx(expected, abs=1e-15)


def test_cmrc_evaluate_both_formats():
    squad_style = {"version": "v1.0", "data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": "a1", "question": "?", "answers": [{"text": "北京大学"}, {"text": "北大"}]},
        {"id": "a2", "question": "?", "answers": [{"text": "1998年"}]},
        {"id": "a3", "question": "?", "answers": [{"text": "x"}]}]}]}]}
    original = [{"context_id": "c", "qas": [
        {"query_id": "a1", "answers": ["北京大学", "北大"]}, {"query_id": "a2", "answers": ["1998年"]},
        {"query_id": "a3", "answers": ["x"]}]}]
    preds = {"a1": "北京的大学", "a2": "1998年。"}
    f1 = 100.0 * ((2 * 0.4 * 0.5) / 0.9 + 1.0) / 3
    em = 100.0 * 1 / 3
    for data in (squad_style, original):
        result = cmrc.evaluate(data, preds)
        assert result == {"AVERAGE": (em + f1) * 0.5, "F1": f1, "EM": em, "TOTAL": 3, "SKIP": 1}
    assert list(cmrc.official_output(result, "p.json").items()) == [
        ("AVERAGE", "%.3f" % ((em + f1) * 0.5)), ("F1", "%.3f" % f1), ("EM", "33.333"), ("TOTAL", 3),
        ("SKIP", 1), ("FILE", "p.json")]
    with pytest.raises(UserError, match="question a3: expected \"answers\" to be a non-empty"):
        cmrc.evaluate([{"qas": [{"id": "a3", "answers": []}]}], {})


# ================================================================ NER against seqeval

TAG_POOL = ["O", "O", "O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC",
            "B-ORG", "I-ORG", "B-MISC-X", "I-", "B", "I", "E", "S", "X-PER", "O-PER", "."]


def random_corpus(rng, pool):
    gold, pred = [], []
    for _ in range(rng.randint(1, 6)):
        n = rng.randint(0, 12)
        g = [rng.choice(pool) for _ in range(n)]
        p = [tag if rng.random() < 0.6 else rng.choice(pool) for tag in g]
        gold.append(g)
        pred.append(p)
    return gold, pred


def test_get_entities_quirks():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "E-LOC", "S-ORG", "I-ORG", "E-PER"]
    assert ner.get_entities(tags) == [("PER", 0, 1), ("LOC", 3, 4), ("LOC", 5, 6), ("ORG", 7, 7),
                                      ("ORG", 8, 8), ("PER", 9, 9)]
    rng = random.Random(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(500):
            tags = [rng.choice(TAG_POOL) for _ in range(rng.randint(0, 15))]
            assert ner.get_entities(tags) == seqeval_get_entities(tags)


@pytest.mark.parametrize("pool", [TAG_POOL, ["O", "B-A", "I-A", "B-B", "I-B"], ["O", "I-A", "I-B", "B-A"],
                                  ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "E-B", "S-B"]],
                         ids=["malformed", "iob2", "iob1", "iobes"])
def test_entity_scores_equal_seqeval(pool):
    rng = random.Random(len(pool))
    nonzero = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(100):
            gold, pred = random_corpus(rng, pool)
            ours = ner.entity_scores(gold, pred)
            assert ours["precision"] == pytest.approx(seqeval.metrics.precision_score(gold, pred), abs=1e-12)
            assert ours["recall"] == pytest.approx(seqeval.metrics.recall_score(gold, pred), abs=1e-12)
            assert ours["f1"] == pytest.approx(seqeval.metrics.f1_score(gold, pred), abs=1e-12)
            nonzero += ours["f1"] > 0
            if not any(seqeval_get_entities(gold) + seqeval_get_entities(pred)):
                assert ours["per_type"] == {} and ours["support"] == 0
                continue
            report = seqeval.metrics.classification_report(gold, pred, output_dict=True)
            assert ours["support"] == report["micro avg"]["support"]
            types = {k: v for k, v in report.items() if not k.endswith(" avg")}
            assert sorted(types) == list(ours["per_type"])
            for name, row in types.items():
                mine = ours["per_type"][name]
                assert (mine["precision"], mine["recall"], mine["f1"]) == pytest.approx(
                    (row["precision"], row["recall"], row["f1-score"]), abs=1e-12)
                assert mine["support"] == row["support"]
    assert nonzero > 50   # the comparison saw real matches, not only zeros


def test_entity_scores_hand_worked_and_lengths():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["S-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["S-ORG"]]
    out = ner.entity_scores(gold, pred)
    assert (out["precision"], out["recall"], out["support"]) == (2 / 3, 2 / 3, 3)
    assert out["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert out["per_type"]["ORG"]["precision"] == 0.5 and out["per_type"]["PER"]["f1"] == 1.0
    with pytest.raises(ValueError, match="sentence 1: 1 gold tags but 2"):
        ner.entity_scores(gold, [pred[0], ["O", "O"]])


# ================================================================ classification

def test_accuracy_f1_mcc_hand_worked():
    labels = [1, 1, 1, 1, 0, 0, 0]
    preds = [1, 1, 1, 0, 1, 0, 0]           # TP 3, FN 1, FP 1, TN 2
    assert classification.accuracy(preds, labels) == 5 / 7
    assert classification.f1_binary(preds, labels) == 6 / 8
    assert classification.matthews_corrcoef(preds, labels) == pytest.approx(
        (3 * 2 - 1 * 1) / math.sqrt(4 * 3 * 4 * 3), abs=1e-15)
    assert classification.f1_binary([0, 0], [0, 0]) == 0.0
    assert classification.matthews_corrcoef([1, 1, 1], [0, 1, 0]) == 0.0
    with pytest.raises(ValueError):
        classification.accuracy([1, 2], [1])


def test_classification_against_sklearn():
    rng = np.random.default_rng(5)
    for _ in range(50):
        n, k = rng.integers(2, 60), rng.integers(2, 4)
        labels, preds = rng.integers(0, k, n), rng.integers(0, k, n)
        assert classification.accuracy(preds, labels) == pytest.approx(
            sklearn.metrics.accuracy_score(labels, preds), abs=1e-15)
        assert classification.matthews_corrcoef(preds, labels) == pytest.approx(
            sklearn.metrics.matthews_corrcoef(labels, preds), abs=1e-12)
        if k == 2:
            assert classification.f1_binary(preds, labels) == pytest.approx(
                sklearn.metrics.f1_score(labels, preds, zero_division=0.0), abs=1e-12)


def loop_ranks(values):
    """Average ranks by counting: rank = (#smaller) + (#equal + 1) / 2."""
    return [sum(w < v for w in values) + (sum(w == v for w in values) + 1) / 2 for v in values]


def test_correlations():
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 9.0]
    mx, my = 2.5, 5.0
    expected = sum((a - mx) * (b - my) for a, b in zip(x, y)) / math.sqrt(
        sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
    assert classification.pearson(x, y) == pytest.approx(expected, abs=1e-15)
    ties = [3, 1, 3, 2, 3, 1]
    assert list(classification.average_ranks(ties)) == loop_ranks(ties) == [5.0, 1.5, 5.0, 3.0, 5.0, 1.5]
    rng = np.random.default_rng(6)
    for _ in range(40):
        n = int(rng.integers(3, 40))
        a = rng.integers(0, 5, n).astype(float)       # many ties
        b = a + rng.normal(0, 2, n)
        if a.std() == 0:
            continue
        assert classification.pearson(b, a) == pytest.approx(scipy.stats.pearsonr(b, a)[0], abs=1e-12)
        assert classification.spearman(b, a) == pytest.approx(scipy.stats.spearmanr(b, a)[0], abs=1e-12)
        assert classification.spearman(b, a) == pytest.approx(
            classification.pearson(loop_ranks(list(b)), loop_ranks(list(a))), abs=1e-12)
    assert classification.pearson([1, 1, 1], [1, 2, 3]) == 0.0


def test_task_table():
    assert classification.TASK_METRICS["mrpc"] == ["f1", "accuracy"]
    assert classification.TASK_METRICS["stsb"] == ["pearson", "spearman"]
    assert {t: classification.primary_metric(t) for t in
            ["squad_v1", "squad_v2", "cola", "ner", "race", "SST-2", "STS-B", "qqp", "tnews", "cmrc2018"]} == {
        "squad_v1": "f1", "squad_v2": "f1", "cola": "mcc", "ner": "f1", "race": "accuracy", "SST-2": "accuracy",
        "STS-B": "pearson", "qqp": "f1", "tnews": "accuracy", "cmrc2018": "F1"}
    assert all(classification.task_metrics(t) == ["accuracy"] for t in
               ["afqmc", "tnews", "iflytek", "cmnli", "ocnli", "cluewsc2020", "csl"])
    scores = classification.classification_scores("mrpc", [1, 0, 1], [1, 1, 1])
    assert scores == {"f1": 0.8, "accuracy": 2 / 3}
    with pytest.raises(UserError, match="unknown task 'glue'"):
        classification.primary_metric("glue")
    with pytest.raises(ValueError, match="not scored from class labels"):
        classification.classification_scores("squad_v1", [1], [1])


# ================================================================ run_eval.py

def run_eval(*args):
    return subprocess.run([sys.executable, str(ROOT / "run_eval.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def write_json(path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def test_run_eval_squad_v1(tmp_path):
    rng = random.Random(7)
    questions = random_squad(rng, 40)
    data = write_json(tmp_path / "dev-v1.1.json", squad_file(questions))
    preds = {qid: (rng.choice(golds) if rng.random() < 0.5 else random_text(rng)) for qid, golds in questions[:-2]}
    pred_file = write_json(tmp_path / "predictions.json", preds)
    done = run_eval("--task", "squad_v1", "--data", data, "--predictions", pred_file, "--out", tmp_path / "o/s.json")
    assert done.returncode == 0, done.stderr
    expected = json.dumps(ref_v1(squad_file(questions)["data"], preds))
    assert done.stdout == expected + "\n"
    assert (tmp_path / "o/s.json").read_text() == expected + "\n"
    assert "Unanswered question q39 will receive score 0." in done.stderr
    assert "no prediction for 2 of 40 questions" in done.stderr
    assert "Evaluation expects" not in done.stderr


def test_run_eval_squad_v1_on_v2_file_warns(tmp_path):
    data = write_json(tmp_path / "dev-v2.0.json", squad_file([("q1", ["cat"]), ("q2", []), ("q3", ["dog"])], "v2.0"))
    preds = write_json(tmp_path / "p.json", {"q1": "the cat", "q3": "dog", "q2": ""})
    done = run_eval("--task", "squad_v1", "--data", data, "--predictions", preds)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"exact_match": 100.0, "f1": 100.0}
    assert "Evaluation expects v-1.1, but got dataset with v-v2.0" in done.stderr
    assert "1 questions have no gold answers" in done.stderr


def test_run_eval_squad_v2(tmp_path):
    rng = random.Random(8)
    questions = random_squad(rng, 30, unanswerable=0.5)
    obj = squad_file(questions, "v2.0")
    preds = {qid: (random_text(rng) if rng.random() < 0.5 else "") for qid, _ in questions}
    na = {qid: rng.random() for qid in preds}
    data, pred_file = write_json(tmp_path / "dev.json", obj), write_json(tmp_path / "p.json", preds)
    na_file = write_json(tmp_path / "null_odds.json", na)
    done = run_eval("--task", "squad_v2", "--data", data, "--predictions", pred_file,
                    "--na_prob_file", na_file, "--na_prob_thresh", "0.4")
    assert done.returncode == 0, done.stderr
    assert done.stdout == json.dumps(ref_v2(obj["data"], preds, na, 0.4), indent=2) + "\n"
    assert done.stderr == ""
    # without the na_prob file: no best_* keys; a missing prediction is named and counted
    del preds["q3"]
    write_json(pred_file, preds)
    done = run_eval("--task", "squad-v2", "--data", data, "--predictions", pred_file)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout, object_pairs_hook=collections.OrderedDict)
    assert "best_f1" not in out and out["total"] == 30
    assert done.stderr.splitlines() == ["Missing prediction for q3",
                                        f"{pred_file}: no prediction for 1 of 30 questions; each scores 0"]


def test_run_eval_cmrc_and_ner(tmp_path):
    data = write_json(tmp_path / "cmrc.json", {"data": [{"paragraphs": [{"qas": [
        {"id": "a1", "answers": [{"text": "北京大学"}]}, {"id": "a2", "answers": [{"text": "红楼梦"}]}]}]}]})
    preds = write_json(tmp_path / "p.json", {"a1": "北京的大学", "a2": "《红楼梦》"})
    done = run_eval("--task", "cmrc2018", "--data", data, "--predictions", preds)
    assert done.returncode == 0, done.stderr
    f1, em = 100.0 * ((2 * 0.4 * 0.5) / 0.9 + 1) / 2, 50.0
    assert done.stdout == json.dumps(collections.OrderedDict([
        ("AVERAGE", "%.3f" % ((em + f1) / 2)), ("F1", "%.3f" % f1), ("EM", "50.000"), ("TOTAL", 2),
        ("SKIP", 0), ("FILE", str(preds))])) + "\n"

    gold = tmp_path / "gold.txt"
    gold.write_text("-DOCSTART- -X- O\n\nJohn NNP B-PER\nlives VBZ O\nin IN O\nNew NNP B-LOC\nYork NNP I-LOC\n\n"
                    "Acme NNP B-ORG\n")
    pred = tmp_path / "pred.txt"
    pred.write_text("John B-PER\nlives O\nin O\nNew B-LOC\nYork B-LOC\n\nAcme B-ORG\n")
    done = run_eval("--task", "conll2003", "--data", gold, "--predictions", pred)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    expected = ner.entity_scores([["B-PER", "O", "O", "B-LOC", "I-LOC"], ["B-ORG"]],
                                 [["B-PER", "O", "O", "B-LOC", "B-LOC"], ["B-ORG"]])
    assert out == expected and out["precision"] == 0.5 and out["recall"] == 2 / 3
    single = tmp_path / "conlleval.txt"
    single.write_text("John B-PER B-PER\nlives O O\nin O O\nNew B-LOC B-LOC\nYork I-LOC B-LOC\n\nAcme B-ORG B-ORG\n")
    done = run_eval("--task", "ner", "--data", single)
    assert done.returncode == 0 and json.loads(done.stdout) == expected
    pred.write_text("John B-PER\nlives O\nat O\nNew B-LOC\nYork B-LOC\n\nAcme B-ORG\n")
    done = run_eval("--task", "ner", "--data", gold, "--predictions", pred)
    assert done.returncode == 2 and "line 3: token 'at'" in done.stderr


def test_run_eval_bad_inputs(tmp_path):
    data = write_json(tmp_path / "dev.json", squad_file([("q1", ["cat"])]))
    good = write_json(tmp_path / "p.json", {"q1": "cat"})
    broken = tmp_path / "broken.json"
    broken.write_text('{"q1": "cat",\n  "q2": }')
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"q1": "café"}'.encode("latin-1"))
    one_column = tmp_path / "tags.txt"
    one_column.write_text("John B-PER B-PER\nB-LOC\n")
    cases = [
        (["--task", "squad_v1", "--data", tmp_path / "nope.json", "--predictions", good], "nope.json: no such file"),
        (["--task", "squad_v1", "--data", data, "--predictions", broken], "broken.json: line 2 column"),
        (["--task", "squad_v1", "--data", data, "--predictions", latin], "latin.json: byte"),
        (["--task", "squad_v1", "--data", data, "--predictions", write_json(tmp_path / "l.json", ["cat"])],
         "expected a JSON object mapping question id"),
        (["--task", "squad_v1", "--data", data, "--predictions", write_json(tmp_path / "n.json", {"q1": None})],
         "the prediction for 'q1' is a JSON null"),
        (["--task", "squad_v2", "--data", data, "--predictions", good, "--na_prob_file",
          write_json(tmp_path / "na.json", {"other": 0.1})], "na.json: no value for 1 predicted"),
        (["--task", "squad_v1", "--data", good, "--predictions", good], "expected a SQuAD JSON object"),
        (["--task", "squad_v1", "--data", data], "--predictions: required"),
        (["--task", "cola", "--data", data, "--predictions", good], "--task cola: scoring a predictions file"),
        (["--task", "ner", "--data", data], "looks like JSON"),
        (["--task", "ner", "--data", one_column], "line 2: one column"),
    ]
    for args, message in cases:
        done = run_eval(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stdout == "" and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
        assert done.stderr.startswith("error: ")
    done = run_eval("--task", "squad_v1", "--data", data, "--predictions", good, "--out", data / "x.json")
    assert done.returncode == 2 and "cannot write" in done.stderr and done.stdout == ""
