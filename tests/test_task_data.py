"""NER, classification and RACE readers and feature builders, on tiny tokenizers of all three kinds."""
import json
import random
import warnings
from collections import Counter

import numpy as np
import pytest
from seqeval.metrics.sequence_labeling import get_entities
from transformers import AlbertTokenizer, BertTokenizer, RobertaTokenizer

from src.data.tasks.classification import (ClassificationOptions, build_classification_features,
                                     create_classification_data, read_classification_file)
from src.data.tasks.features import encode_texts, longest_first, special_layout
from src.data.tasks.ner import (NO_GOLD, NerOptions, build_ner_features, convert_tags, create_ner_data, read_ner_file)
from src.data.tasks.race import RaceOptions, build_race_features, choice_text, create_race_data, read_race
from src.data.tasks.task_records import load_task_columns, read_task_manifest
from src.data.tokenization import load_tokenizer
from src.errors import UserError
from tiny_tokenizers import albert_tokenizer_json, train_bpe, train_sentencepiece, train_wordpiece

warnings.filterwarnings("ignore", module="transformers")

KINDS = ("wordpiece", "bpe", "sentencepiece")
CORPUS = [
    "EU rejects German call to boycott British lamb .", "Peter Blackburn went to Brussels on Monday .",
    "The quick brown fox jumps over the lazy dog .", "Hello , world ! How are you ?",
    "我爱北京天安门，上海浦东新区的张三在腾讯工作。", "Tom liked the book , so he read it again .",
    "A plane is taking off . An air plane is taking off .", "which option is right for the blank ?",
] * 20


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """One model directory per tokenizer kind, trained on a tiny corpus (plus tokenizer.json for transformers)."""
    root = tmp_path_factory.mktemp("task_tokenizers")
    dirs = {kind: root / kind for kind in (*KINDS, "albert_json")}
    train_wordpiece(CORPUS, dirs["wordpiece"], 150)
    train_bpe(CORPUS, dirs["bpe"], 400)
    train_sentencepiece(CORPUS, dirs["sentencepiece"], 110)
    albert_tokenizer_json(dirs["sentencepiece"] / "spiece.model", dirs["albert_json"] / "tokenizer.json")
    return dirs


@pytest.fixture(scope="module")
def tokenizers(model_dirs):
    """Our tokenizer per kind."""
    return {kind: load_tokenizer(model_dirs[kind]) for kind in KINDS}


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# --- tag schemes ---------------------------------------------------------------------------------------------

def _random_entities(rng, length):
    """Non-overlapping (type, first, last) entities, often adjacent and of the same type (IOB1's B- case)."""
    entities, position = [], rng.randint(0, 2)
    while position < length:
        last = min(length - 1, position + rng.randint(0, 3))
        entities.append((rng.choice("XY"), position, last))
        position = last + 1 + rng.choice([0, 0, 1, 2])
    return entities


def _tags(entities, length, scheme):
    """Reference tagging of entities in one scheme, written independently of src.data.tasks.ner."""
    tags = ["O"] * length
    for index, (kind, first, last) in enumerate(entities):
        follows_same = index > 0 and entities[index - 1][0] == kind and entities[index - 1][2] == first - 1
        for position in range(first, last + 1):
            tags[position] = f"I-{kind}"
        if scheme == "bio" or (scheme == "iob1" and follows_same):
            tags[first] = f"B-{kind}"
        if scheme == "bioes":
            if first == last:
                tags[first] = f"S-{kind}"
            else:
                tags[first], tags[last] = f"B-{kind}", f"E-{kind}"
    return tags


def test_tag_schemes_convert_both_ways_and_keep_seqeval_entities():
    rng = random.Random(1)
    for _ in range(300):
        length = rng.randint(1, 14)
        entities = _random_entities(rng, length)
        by_scheme = {scheme: _tags(entities, length, scheme) for scheme in ("iob1", "bio", "bioes")}
        for source, tags in by_scheme.items():
            assert get_entities(tags) == entities
            for target, expected in by_scheme.items():
                assert convert_tags(tags, source, target) == expected, (source, target, tags)
                assert convert_tags(tags, "auto", target) == expected
    assert convert_tags(["I-PER", "I-PER", "B-PER"], "iob2", "iobes") == ["B-PER", "E-PER", "S-PER"]


def test_tag_conversion_of_ill_formed_sequences_keeps_what_seqeval_reads():
    rng = random.Random(2)
    vocabulary = ["O", "B-X", "I-X", "E-X", "S-X", "B-Y", "I-Y", "E-Y", "S-Y"]
    for _ in range(500):
        tags = [rng.choice(vocabulary) for _ in range(rng.randint(1, 10))]
        for target in ("iob1", "bio", "bioes"):
            assert get_entities(convert_tags(tags, "auto", target)) == get_entities(tags), (tags, target)


def test_tag_conversion_rejects_tags_outside_the_scheme():
    with pytest.raises(ValueError, match="'E-PER' is not a bio tag"):
        convert_tags(["B-PER", "E-PER"], "bio", "bioes")
    with pytest.raises(ValueError, match="'PER' is not O or"):
        convert_tags(["PER"], "auto", "bio")
    with pytest.raises(ValueError, match="'bilou'"):
        convert_tags(["O"], "bilou", "bio")


# --- NER readers ---------------------------------------------------------------------------------------------

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

-DOCSTART- -X- -X- O


Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER
Brussels NNP I-NP I-LOC


"""


def test_conll_reader_skips_docstart_and_blank_lines(tmp_path):
    examples, fmt = read_ner_file(_write(tmp_path / "train.txt", CONLL))
    assert fmt == "conll"
    assert [example.words for example in examples] == [["EU", "rejects", "German", "call", "."],
                                                       ["Peter", "Blackburn", "Brussels"]]
    assert [example.tags for example in examples] == [["I-ORG", "O", "I-MISC", "O", "O"], ["I-PER", "I-PER", "I-LOC"]]
    assert [example.origin.rsplit(" ", 1)[1] for example in examples] == ["3", "12"]


def test_conll_reader_reads_unlabeled_files_and_rejects_mixed_columns(tmp_path):
    examples, _ = read_ner_file(_write(tmp_path / "test.txt", "EU\nrejects\n\nPeter\n"))
    assert [(example.words, example.tags) for example in examples] == [(["EU", "rejects"], None), (["Peter"], None)]
    with pytest.raises(UserError, match=r"mixed\.txt: line 3: 1 columns"):
        read_ner_file(_write(tmp_path / "mixed.txt", "EU B-ORG\nrejects O\nGerman\n"))


def test_character_reader_keeps_odd_characters_and_wants_two_columns(tmp_path):
    text = "中\tB-LOC\n国\tI-LOC\n\u3000\tO\n人\tO\n\n上 B-ORG\n海 I-ORG\n"
    examples, fmt = read_ner_file(_write(tmp_path / "msra.txt", text), "char")
    assert fmt == "char"
    assert [(example.words, example.tags) for example in examples] == [
        (["中", "国", "\u3000", "人"], ["B-LOC", "I-LOC", "O", "O"]), (["上", "海"], ["B-ORG", "I-ORG"])]
    with pytest.raises(UserError, match=r"bad\.txt: line 2: 3 columns; expected a character and its tag"):
        read_ner_file(_write(tmp_path / "bad.txt", "中 B-LOC\n国 x I-LOC\n"), "char")


CLUENER = [
    {"text": "浙商银行企业信贷部叶老桂博士", "label": {"name": {"叶老桂": [[9, 11]]}, "company": {"浙商银行": [[0, 3]]}}},
    {"text": "我爱北京", "label": {}},
    {"text": "张三在北京", "label": {"name": {"张三": [[0, 1]]}, "address": {"上海": [[3, 4]]}}},
    {"text": "上海张三", "label": {"address": {"上海": [[0, 1]]}, "name": {"海张": [[1, 2]]}}},
    {"id": 7, "text": "腾讯 公司"},
]


def test_cluener_spans_become_character_bio_tags(tmp_path):
    path = _write(tmp_path / "dev.json", "\n".join(json.dumps(record, ensure_ascii=False) for record in CLUENER))
    skipped = Counter()
    examples, fmt = read_ner_file(path, skipped=skipped)
    assert fmt == "cluener"
    assert examples[0].words == list("浙商银行企业信贷部叶老桂博士")
    assert examples[0].tags == ["B-company", "I-company", "I-company", "I-company"] + ["O"] * 5 + [
        "B-name", "I-name", "I-name", "O", "O"]
    assert examples[1].tags == ["O"] * 4
    assert (examples[2].words, examples[2].tags) == (list("腾讯 公司"), None)
    assert examples[2].origin.endswith("line 5")
    assert skipped == {"entity_span_mismatch": 1, "overlapping_entities": 1}


def test_malformed_json_lines_name_file_and_line(tmp_path):
    path = _write(tmp_path / "train.json", '{"text": "我爱北京", "label": {}}\n{"text": "上海",\n')
    with pytest.raises(UserError, match=r"train\.json: line 2 column"):
        read_ner_file(path)
    with pytest.raises(UserError, match=r"afqmc\.json: line 1 column"):
        read_classification_file(_write(tmp_path / "afqmc.json", "{oops}\n"), "afqmc")
    with pytest.raises(UserError, match=r"high1\.txt: line 1 column"):
        read_race(_write(tmp_path / "high1.txt", '{"article": "x", }'))


# --- NER features --------------------------------------------------------------------------------------------

NER_WORDS = [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
             ["Peter", "Blackburn", "went", "to", "Brussels"], ["我", "爱", "北", "京", "天安门"]]
NER_TAGS = [["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER", "O", "O", "B-LOC"],
            ["O", "O", "B-LOC", "I-LOC", "B-LOC"]]


def _transformers_tokenizer(kind, model_dirs):
    """transformers' fast tokenizer for the same files, set up as its token-classification examples use it."""
    if kind == "wordpiece":
        return BertTokenizer.from_pretrained(model_dirs["wordpiece"])
    if kind == "bpe":
        return RobertaTokenizer.from_pretrained(model_dirs["bpe"], add_prefix_space=True)
    return AlbertTokenizer.from_pretrained(model_dirs["albert_json"])


def _ner_examples(words_lists, tags_lists):
    from src.data.tasks.ner import NerExample

    return [NerExample(words, tags, f"mem: line {index}") for index, (words, tags) in
            enumerate(zip(words_lists, tags_lists))]


@pytest.mark.parametrize("kind", KINDS)
def test_ner_labels_sit_on_first_sub_tokens_as_in_transformers(kind, tokenizers, model_dirs):
    options = NerOptions(max_seq_length=48)
    label2id = {label: index for index, label in enumerate(["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
                                                            "B-ORG", "I-ORG", "B-PER", "I-PER"])}
    built = build_ner_features(_ner_examples(NER_WORDS, NER_TAGS), tokenizers[kind], options, label2id)
    reference = _transformers_tokenizer(kind, model_dirs)
    split_words = 0
    for row, (words, tags) in enumerate(zip(NER_WORDS, NER_TAGS)):
        encoded = reference(words, is_split_into_words=True, max_length=48, padding="max_length", truncation=True)
        word_ids = encoded.word_ids()
        expected = [-1 if word is None or (position and word_ids[position - 1] == word) else label2id[tags[word]]
                    for position, word in enumerate(word_ids)]
        assert built.columns["input_ids"][row].tolist() == encoded["input_ids"]
        assert built.columns["input_mask"][row].tolist() == encoded["attention_mask"]
        assert built.columns["label_ids"][row].tolist() == expected
        split_words += sum(word_ids.count(word) > 1 for word in set(word_ids) - {None})
    assert split_words > 0
    assert built.columns["word_count"].tolist() == [len(words) for words in NER_WORDS]
    assert built.columns["tags"].tolist() == [" ".join(tags) for tags in NER_TAGS]


@pytest.mark.parametrize("kind", KINDS)
def test_ner_truncation_is_counted_and_word_count_matches_labelled_positions(kind, tokenizers):
    words = ["Peter", "Blackburn", "went", "to", "Brussels", "on", "Monday"] * 4
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "O"] * 4
    label2id = {"O": 0, "B-LOC": 1, "I-LOC": 2, "B-PER": 3, "I-PER": 4}
    built = build_ner_features(_ner_examples([words], [tags]), tokenizers[kind], NerOptions(max_seq_length=16),
                               label2id)
    labels = built.columns["label_ids"][0]
    kept = built.columns["word_count"][0]
    assert 0 < kept < len(words)
    assert int((labels != -1).sum()) == kept
    assert labels[labels != -1].tolist() == [label2id[tag] for tag in tags[:kept]]
    assert built.handled == {"truncated_sentences": 1, "words_beyond_max_seq_length": len(words) - kept}
    assert built.columns["input_mask"][0].sum() == 16
    assert built.columns["tags"][0] == " ".join(tags)


def test_ner_words_without_tokens_become_unknown_and_unlabeled_rows_mark_word_starts(tokenizers):
    tokenizer = tokenizers["wordpiece"]
    examples = _ner_examples([["EU", "\u200b", "call"], ["Peter", "went"]], [["B-ORG", "O", "O"], None])
    built = build_ner_features(examples, tokenizer, NerOptions(max_seq_length=10), {"O": 0, "B-ORG": 1, "I-ORG": 2})
    ids, labels = built.columns["input_ids"], built.columns["label_ids"]
    assert ids[0][2] == tokenizer.unk_token_id
    assert labels[0][:5].tolist() == [-1, 1, 0, 0, -1]
    assert labels[1][1] == NO_GOLD and (labels[1] == NO_GOLD).sum() == 2 and set(labels[1]) == {-1, NO_GOLD}
    assert built.handled == {"words_without_tokens_as_unk": 1, "unlabeled_sentences": 1}
    assert built.columns["tags"].tolist() == ["B-ORG O O", ""]


def test_ner_create_round_trip_and_eval_reuses_train_labels(tmp_path, model_dirs):
    train = _write(tmp_path / "train.txt", CONLL)
    options = NerOptions(max_seq_length=24, tag_scheme="bioes")
    manifest = create_ner_data(str(train), str(model_dirs["wordpiece"]), str(tmp_path / "ner_train"), options)
    labels = ["O"] + [f"{prefix}-{kind}" for kind in ("LOC", "MISC", "ORG", "PER") for prefix in "BIES"]
    assert manifest["labels"] == labels
    assert (manifest["task"], manifest["dataset"], manifest["split"]) == ("ner", "conll", "train")
    assert manifest["counts"] == {"sentences": 2, "words": 8, "features": 2}
    assert manifest["tokenizer"]["fingerprint"] == load_tokenizer(model_dirs["wordpiece"]).fingerprint()
    columns = load_task_columns(str(tmp_path / "ner_train"))
    assert columns["tags"].tolist() == ["S-ORG O S-MISC O O", "B-PER E-PER S-LOC"]
    assert columns["label_ids"].shape == (2, 24) and columns["label_ids"].dtype == np.int32
    first_row = columns["label_ids"][0]
    assert first_row[first_row != -1].tolist() == [labels.index(tag) for tag in ["S-ORG", "O", "S-MISC", "O", "O"]]

    dev = _write(tmp_path / "dev.txt", "Peter B-PER\nBlackburn E-PER\n\nParis S-LOC\n")
    eval_manifest = create_ner_data(str(dev), str(model_dirs["wordpiece"]), str(tmp_path / "ner_dev"), options,
                                    split="eval", label_file=str(tmp_path / "ner_train"))
    assert eval_manifest["labels"] == labels
    label2id = json.loads((tmp_path / "ner_train" / "label2id.json").read_text())
    assert label2id == {label: index for index, label in enumerate(labels)}
    again = create_ner_data(str(dev), str(model_dirs["wordpiece"]), str(tmp_path / "ner_dev2"), options,
                            split="eval", label_file=str(tmp_path / "ner_train" / "label2id.json"))
    assert again["labels"] == labels
    bad = _write(tmp_path / "bad_dev.txt", "Peter B-PER\n\nGoogle B-COMPANY\n")
    with pytest.raises(UserError, match=r"bad_dev\.txt: line 3 .*label 'S-COMPANY' is not one of"):
        create_ner_data(str(bad), str(model_dirs["wordpiece"]), str(tmp_path / "bad"), options, split="eval",
                        label_file=str(tmp_path / "ner_train" / "manifest.json"))
    assert not (tmp_path / "bad").exists()
    with pytest.raises(UserError, match="eval split must use the train split's labels"):
        create_ner_data(str(dev), str(model_dirs["wordpiece"]), str(tmp_path / "nolabels"), options, split="eval")


# --- classification ------------------------------------------------------------------------------------------

MRPC_A = 'Amrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .'
MRPC_B = ('Referring to him as only " the witness " , Amrozi accused his brother of deliberately distorting '
          'his evidence .')
MNLI_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
               "sentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")
WSC_TEXT = "我把床铺好了，它看上去很舒服。"
LAYOUTS = {
    "cola": ("train.tsv", "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n",
             [("Our friends won't buy this analysis.", None, "1"), ("They drank the pub.", None, "0")], {}),
    "sst2": ("train.tsv", "sentence\tlabel\nhide new secretions from the parental units \t0\n\"great\" fun\t1\n",
             [("hide new secretions from the parental units ", None, "0"), ('"great" fun', None, "1")], {}),
    "mrpc": ("train.tsv", f"\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t702876\t702977\t{MRPC_A}\t{MRPC_B}\n",
             [(MRPC_A, MRPC_B, "1")], {}),
    "stsb": ("dev.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                        "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a hard hat is dancing.\t"
                        "A man wearing a hard hat is dancing.\t5.000\n",
             [("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", 5.0)], {}),
    "qqp": ("train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                         "1\t3\t4\tHow do I learn?\tWhat is the best way to learn?\t1\n201841\t303345\t303346\tWhy?\n",
            [("How do I learn?", "What is the best way to learn?", "1")], {"missing_fields": 1}),
    "mnli": ("dev_matched.tsv", MNLI_HEADER + "\n0\t63735\t63735n\tslate\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t"
                                "The new rights are nice enough\tEveryone really likes the newest benefits\t"
                                "neutral\tentailment\tneutral\tneutral\tneutral\tneutral\n",
             [("The new rights are nice enough", "Everyone really likes the newest benefits", "neutral")], {}),
    "qnli": ("dev.tsv", "index\tquestion\tsentence\tlabel\n0\tWhat came into force?\tThe law came into force.\t"
                        "entailment\n",
             [("What came into force?", "The law came into force.", "entailment")], {}),
    "rte": ("train.tsv", "index\tsentence1\tsentence2\tlabel\n0\tNo weapons were found.\tWeapons were found.\t"
                         "not_entailment\n", [("No weapons were found.", "Weapons were found.", "not_entailment")], {}),
    "wnli": ("train.tsv", "index\tsentence1\tsentence2\tlabel\n0\tI stuck a pin.\tThe pin had a hole.\t0\n",
             [("I stuck a pin.", "The pin had a hole.", "0")], {}),
    "chnsenticorp": ("train.tsv", "label\ttext_a\n1\t房间很干净\n0\t服务太差\n",
                     [("房间很干净", None, "1"), ("服务太差", None, "0")], {}),
    "tnews": ("train.json", [{"label": "102", "label_desc": "news_entertainment", "sentence": "江疏影甜甜圈自拍",
                              "keywords": "江疏影,美少女"}], [("江疏影甜甜圈自拍", None, "102")], {}),
    "iflytek": ("train.json", [{"label": "11", "label_des": "薅羊毛", "sentence": "现在可以用微信支付"}],
                [("现在可以用微信支付", None, "11")], {}),
    "afqmc": ("dev.json", [{"sentence1": "花呗怎么还", "sentence2": "花呗如何还款", "label": "1"}],
              [("花呗怎么还", "花呗如何还款", "1")], {}),
    "cmnli": ("dev.json", [{"sentence1": "他来了", "sentence2": "他没来", "label": "contradiction"}],
              [("他来了", "他没来", "contradiction")], {}),
    "ocnli": ("dev.json", [{"level": "medium", "sentence1": "一月份", "sentence2": "二月份", "label": "neutral",
                            "label0": "neutral", "genre": "gov", "prem_id": "gov_1", "id": 0},
                           {"sentence1": "一", "sentence2": "二", "label": "-", "id": 1}],
              [("一月份", "二月份", "neutral")], {"no_gold_label": 1}),
    "csl": ("dev.json", [{"id": 1, "abst": "针对水下目标", "keyword": ["水声", "目标"], "label": "1"}],
            [("水声 目标", "针对水下目标", "1")], {}),
    "cluewsc2020": ("train.json", [
        {"target": {"span2_index": 7, "span1_index": 2, "span1_text": "床", "span2_text": "它"}, "idx": 0,
         "label": "false", "text": WSC_TEXT},
        {"target": {"span2_index": 2, "span1_index": 7, "span1_text": "它", "span2_text": "床"}, "idx": 1,
         "label": "true", "text": WSC_TEXT},
        {"target": {"span2_index": 3, "span1_index": 2, "span1_text": "X", "span2_text": "铺"}, "idx": 2,
         "label": "true", "text": WSC_TEXT}],
        [("我把_床_铺好了，[它]看上去很舒服。", None, "false"), ("我把[床]铺好了，_它_看上去很舒服。", None, "true")],
        {"span_text_mismatch": 1}),
}


@pytest.mark.parametrize("dataset", sorted(LAYOUTS))
def test_each_dataset_layout_is_read(dataset, tmp_path):
    name, content, expected, expected_skipped = LAYOUTS[dataset]
    if not isinstance(content, str):
        content = "\n".join(json.dumps(record, ensure_ascii=False) for record in content) + "\n"
    skipped = Counter()
    examples = read_classification_file(_write(tmp_path / name, content), dataset, skipped)
    assert [(example.text_a, example.text_b, example.label) for example in examples] == expected
    assert skipped == expected_skipped


def test_test_files_without_labels_give_minus_one(tmp_path, tokenizers):
    cola = read_classification_file(_write(tmp_path / "test.tsv", "index\tsentence\n0\tBill whistled.\n"), "cola")
    mnli = read_classification_file(_write(tmp_path / "test_matched.tsv", MNLI_HEADER.rsplit("\t", 6)[0] + "\n"
                                           "0\t1\t1n\tslate\tx\ty\tx\ty\tA man.\tA woman.\n"), "mnli")
    assert [(example.text_a, example.label) for example in cola + mnli] == [("Bill whistled.", None), ("A man.", None)]
    built = build_classification_features(mnli, tokenizers["wordpiece"], ClassificationOptions("mnli", 16),
                                          {"contradiction": 0, "entailment": 1, "neutral": 2})
    assert built.columns["label_ids"].tolist() == [-1]
    assert built.handled["unlabeled_examples"] == 1


def test_classification_round_trip_with_official_labels_and_truncation(tmp_path, model_dirs, tokenizers):
    rows = ["index\tsentence1\tsentence2\tlabel"] + [
        f"{index}\tThe quick brown fox jumps over the lazy dog .\tHello world{' again' * index}\t{label}"
        for index, label in enumerate(["entailment", "not_entailment", "entailment"])]
    train = _write(tmp_path / "train.tsv", "\n".join(rows) + "\n")
    options = ClassificationOptions("rte", max_seq_length=14)
    manifest = create_classification_data(str(train), str(model_dirs["bpe"]), str(tmp_path / "rte"), options)
    assert manifest["labels"] == ["entailment", "not_entailment"]
    assert manifest["regression"] is False
    assert manifest["handled"] == {"truncated_examples": 3}
    columns = load_task_columns(str(tmp_path / "rte"))
    examples = read_classification_file(train, "rte")
    built = build_classification_features(examples, tokenizers["bpe"], options, {"entailment": 0, "not_entailment": 1})
    for name in ("input_ids", "input_mask", "segment_ids", "label_ids", "example_index"):
        assert np.array_equal(columns[name], built.columns[name]), name
    assert columns["label_ids"].tolist() == [0, 1, 0] and columns["input_ids"].dtype == np.int32
    expected = tokenizers["bpe"].encode(examples[2].text_a, examples[2].text_b, max_length=14, padding=True)
    assert columns["input_ids"][2].tolist() == expected.ids


def test_stsb_targets_are_float32_regression(tmp_path, model_dirs):
    _, content, _, _ = LAYOUTS["stsb"]
    path = _write(tmp_path / "dev.tsv", content + content.splitlines()[1].replace("5.000", "3.25") + "\n")
    manifest = create_classification_data(str(path), str(model_dirs["wordpiece"]), str(tmp_path / "stsb"),
                                          ClassificationOptions("stsb", 24), split="eval")
    assert manifest["regression"] is True and manifest["labels"] == []
    labels = load_task_columns(str(tmp_path / "stsb"))["label_ids"]
    assert labels.dtype == np.float32 and labels.tolist() == [5.0, 3.25]
    with pytest.raises(UserError, match=r"bad\.tsv: line 2: score 'high' is not a number"):
        read_classification_file(_write(tmp_path / "bad.tsv", content.replace("5.000", "high")), "stsb")


def test_unknown_eval_label_is_a_user_error_naming_it(tmp_path, model_dirs):
    dev = _write(tmp_path / "dev.json", json.dumps({"sentence1": "他来了", "sentence2": "他没来", "label": "maybe"}))
    with pytest.raises(UserError, match=r"dev\.json: line 1: label 'maybe' is not one of the 3 known labels"):
        create_classification_data(str(dev), str(model_dirs["wordpiece"]), str(tmp_path / "out"),
                                   ClassificationOptions("cmnli"), split="eval")
    sst = _write(tmp_path / "dev.tsv", "sentence\tlabel\ngood\t2\n")
    with pytest.raises(UserError, match=r"dev\.tsv: line 2: label '2' is not one of the 2 known labels"):
        create_classification_data(str(sst), str(model_dirs["wordpiece"]), str(tmp_path / "out"),
                                   ClassificationOptions("sst2"), split="eval", label_file=["0", "1"])
    assert not (tmp_path / "out").exists()


def test_wrong_file_for_dataset_and_bad_bytes_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"x\.tsv: line 1: header has no 'question1' column"):
        read_classification_file(_write(tmp_path / "x.tsv", "sentence\tlabel\nhi\t1\n"), "qqp")
    (tmp_path / "latin.tsv").write_bytes(b"sentence\tlabel\ncaf\xe9\t1\n")
    with pytest.raises(UserError, match=r"latin\.tsv: line 2: byte 4 is not UTF-8"):
        read_classification_file(tmp_path / "latin.tsv", "sst2")
    with pytest.raises(UserError, match="--dataset 'glue'"):
        ClassificationOptions("glue").check()


@pytest.mark.parametrize("kind", KINDS)
def test_pairs_truncate_exactly_as_the_tokenizer_does(kind, tokenizers):
    tokenizer, rng = tokenizers[kind], random.Random(3)
    words = "the quick brown fox 我爱北京 hello , world Brussels lamb".split()
    layout = special_layout(tokenizer)
    for _ in range(150):
        first = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        second = " ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        length = rng.randint(5, 24)
        for pair in (None, second):
            columns, truncated = encode_texts(tokenizer, layout, [first], None if pair is None else [pair], length)
            expected = tokenizer.encode(first, pair, max_length=length, padding=True)
            assert columns["input_ids"][0].tolist() == expected.ids
            assert columns["segment_ids"][0].tolist() == expected.type_ids
            assert columns["input_mask"][0].tolist() == expected.attention_mask
            assert truncated[0] == (len(tokenizer.encode(first, pair).ids) > length)
    assert longest_first(30, 40, 50) == (25, 25) and longest_first(3, 100, 50) == (3, 47)


# --- RACE ----------------------------------------------------------------------------------------------------

def _race_article(article, questions, options, answers, name):
    return {"answers": answers, "options": options, "questions": questions, "article": article, "id": name}


@pytest.fixture()
def race_dir(tmp_path):
    """RACE's layout: train/high/*.txt and train/middle/*.txt, one article per file."""
    long_article = " ".join(["Tom liked the book , so he read it again ."] * 12)
    for level, name, article, questions, answers in (
            ("high", "1.txt", long_article, ["Why did Tom read it again ?", "Tom _ the book ."], ["B", "A"]),
            ("middle", "2.txt", "The quick brown fox jumps over the lazy dog .", ["What did the fox do ?"], ["D"])):
        folder = tmp_path / "train" / level
        folder.mkdir(parents=True, exist_ok=True)
        options = [["he liked it", "he had to", "it was short", "no reason"] for _ in questions]
        _write(folder / name, json.dumps(_race_article(article, questions, options, answers, f"{level}{name}")))
    _write(tmp_path / "train" / "middle" / "3.txt", json.dumps(_race_article(
        "A plane is taking off .", ["Which ?", "What ?"], [["a", "b", "c", "d"], ["a", "b"]], ["C", "A"], "m3")))
    return tmp_path / "train"


def test_race_reader_walks_folders_and_fills_blanks(race_dir):
    skipped = Counter()
    articles = read_race(race_dir, skipped)
    assert [len(article.questions) for article in articles] == [2, 1, 1]
    assert [question.label for article in articles for question in article.questions] == [1, 0, 3, 2]
    assert skipped == {"not_four_options": 1}
    assert choice_text("Tom _ the book .", "liked") == "Tom liked the book ."
    assert choice_text("Why ?", "no reason") == "Why ? no reason"


@pytest.mark.parametrize("kind", KINDS)
def test_race_features_keep_question_and_option_and_cut_the_article(kind, race_dir, tokenizers):
    tokenizer = tokenizers[kind]
    articles = read_race(race_dir)
    built = build_race_features(articles, tokenizer, RaceOptions(max_seq_length=64))
    assert built.columns["input_ids"].shape == (4, 4, 64) and built.columns["segment_ids"].shape == (4, 4, 64)
    assert built.columns["label_ids"].tolist() == [1, 0, 3, 2]
    assert built.counts == {"articles": 3, "questions": 4}
    assert built.handled["article_truncated"] >= 8 and built.handled["question_option_truncated"] == 0
    choice = tokenizer.encode(choice_text("Tom _ the book .", "he had to")).ids[1:-1]
    row = built.columns["input_ids"][1, 1]
    assert row[row != tokenizer.pad_token_id].tolist()[-len(choice) - 1:-1] == choice
    assert built.columns["input_mask"][1, 1].sum() == 64


def test_race_round_trip(race_dir, tmp_path, model_dirs):
    manifest = create_race_data(str(race_dir), str(model_dirs["sentencepiece"]), str(tmp_path / "race"),
                                RaceOptions(max_seq_length=32))
    assert manifest["labels"] == ["A", "B", "C", "D"] and manifest["skipped"] == {"not_four_options": 1}
    assert read_task_manifest(str(tmp_path / "race"), "race")["rows"] == 4
    columns = load_task_columns(str(tmp_path / "race"))
    assert columns["input_ids"].shape == (4, 4, 32) and columns["label_ids"].tolist() == [1, 0, 3, 2]
    with pytest.raises(UserError, match=r"answer 'E'; expected one of A, B, C, D"):
        read_race(_write(tmp_path / "bad.txt", json.dumps(_race_article("x", ["q"], [["a", "b", "c", "d"]], ["E"],
                                                                         "bad"))))
