"""Tokenizer parity with HF transformers' BERT, RoBERTa and ALBERT tokenizers, built on tiny local vocabularies."""
import json
import re
import warnings

import pytest
from tokenizers import decoders
from transformers import AlbertTokenizer, BertTokenizer, RobertaTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

from src.data.tokenization import TOKENIZER_FILES, Tokenizer, load_tokenizer
from src.errors import UserError
from tiny_tokenizers import albert_tokenizer_json, train_bpe, train_sentencepiece, train_wordpiece

warnings.filterwarnings("ignore", module="transformers")

LONG_MIXED = ("SuperCaliFragilistic9Expiali" * 5)[:120]
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How are you?",
    "café naïve Ångström résumé",
    "CAFÉ Naïve ÅNGSTRÖM",
    "我爱北京天安门",
    "I love 北京 and 天安门, 你好世界!",
    "emoji 😀 🎉 text😀",
    "a\x00b\tc\u200bd\x7fe",
    "tab\there\nnewline\u200bzero\x7fdel",
    "a" * 150,
    LONG_MIXED,
    "",
    "   ",
    "\t\n \u3000",
    "  leading and trailing  ",
    "``quoted'' text",
    "numbers 1,000 and 2, 3, 45, in 1999, 2000, and 2001, prices",
    "the [MASK] sat on <mask>",
]
PAIRS = [("The quick brown fox.", "我爱北京"), ("café", ""), ("", "naïve Ångström"), (LONG_MIXED, "a" * 150),
         ("emoji 😀", "a\x00b\tc\u200bd\x7fe")]
MAX_LENGTHS = [5, 9, 16]
CORPUS = [text for text in TEXTS if text.strip()] * 10 + [
    "the lazy dog jumps", "hello world", "in 1999, 2000, and 2001, prices rose by 3, 4, 5 percent"] * 10
DIGIT_COMMA = "in 1999, 2000, and 2001, prices"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """One model directory per tokenizer kind, each trained on a tiny corpus holding the test characters."""
    root = tmp_path_factory.mktemp("tokenizers")
    made = {name: root / name for name in ("uncased", "cased", "bpe", "spm", "spm_json")}
    for name, lower in (("uncased", True), ("cased", False)):
        train_wordpiece(CORPUS, made[name], 300, lowercase=lower)
    train_bpe(CORPUS, made["bpe"], 500)
    train_sentencepiece(CORPUS, made["spm"], 120, split_by_number=False)
    albert_tokenizer_json(made["spm"] / "spiece.model", made["spm_json"] / "tokenizer.json")
    return made


@pytest.fixture(scope="module")
def loaded(dirs):
    """(ours, transformers') tokenizer pairs over the same files."""
    return {
        "uncased": (load_tokenizer(dirs["uncased"]), BertTokenizer.from_pretrained(dirs["uncased"])),
        "cased": (load_tokenizer(dirs["cased"], do_lower_case=False),
                  BertTokenizer.from_pretrained(dirs["cased"], do_lower_case=False)),
        "bpe": (load_tokenizer(dirs["bpe"]), RobertaTokenizer.from_pretrained(dirs["bpe"])),
        "spm": (load_tokenizer(dirs["spm"]), AlbertTokenizer.from_pretrained(dirs["spm_json"])),
    }


def _reference(hf, text, pair=None, **kwargs):
    """transformers' ids, type ids and mask for one input (batch call: its single call drops an empty pair)."""
    out = hf([text], None if pair is None else [pair], return_token_type_ids=True, **kwargs)
    return out["input_ids"][0], out["token_type_ids"][0], out["attention_mask"][0]


def _ours(encoding):
    return encoding.ids, encoding.type_ids, encoding.attention_mask


@pytest.mark.parametrize("name", ["uncased", "cased", "bpe", "spm"])
def test_single_texts_match_transformers(loaded, name):
    ours, hf = loaded[name]
    for text in TEXTS:
        assert _ours(ours.encode(text)) == _reference(hf, text), repr(text)


@pytest.mark.parametrize("name", ["uncased", "cased", "bpe", "spm"])
def test_pairs_and_truncation_match_transformers(loaded, name):
    ours, hf = loaded[name]
    for text, pair in PAIRS + [(text, "second text é 中") for text in TEXTS]:
        assert _ours(ours.encode(text, pair)) == _reference(hf, text, pair), repr((text, pair))
        for max_length in MAX_LENGTHS:
            expected = _reference(hf, text, pair, truncation=True, max_length=max_length)
            assert _ours(ours.encode(text, pair, max_length=max_length)) == expected, repr((text, pair, max_length))


@pytest.mark.parametrize("name", ["uncased", "cased", "bpe", "spm"])
def test_padding_matches_transformers(loaded, name):
    ours, hf = loaded[name]
    for text, pair in PAIRS:
        expected = _reference(hf, text, pair, truncation=True, max_length=16, padding="max_length")
        encoding = ours.encode(text, pair, max_length=16, padding=True)
        assert _ours(encoding) == expected
        assert all(encoding.offsets[i] == (0, 0) for i, mask in enumerate(encoding.attention_mask) if not mask)


@pytest.mark.parametrize("name", ["uncased", "cased", "bpe", "spm"])
def test_backend_is_the_one_transformers_builds(loaded, name):
    ours, hf = loaded[name]
    call_settings = ("truncation", "padding")  # transformers leaves its last call's settings on its backend
    expected = {k: v for k, v in json.loads(hf.backend_tokenizer.to_str()).items() if k not in call_settings}
    assert {k: v for k, v in json.loads(ours.backend.to_str()).items() if k not in call_settings} == expected


def test_empty_pair_is_an_empty_second_segment(loaded):
    """None means no pair; "" is an empty segment (transformers' batch call and pure-Python BERT agree)."""
    ours, hf = loaded["uncased"]
    assert ours.encode("café", "").ids == ours.encode("café").ids + [ours.sep_token_id]
    assert hf("café", "")["input_ids"] == ours.encode("café").ids  # transformers' single call drops it


@pytest.mark.parametrize("lower", [True, False])
def test_wordpiece_matches_pure_python_bert(dirs, lower):
    ours = load_tokenizer(dirs["uncased" if lower else "cased"], do_lower_case=lower)
    legacy = BertTokenizerLegacy(str(dirs["uncased" if lower else "cased"] / "vocab.txt"), do_lower_case=lower)
    for text, pair in PAIRS + [(text, None) for text in TEXTS]:
        assert _ours(ours.encode(text, pair)) == _reference(legacy, text, pair), repr((text, pair))


def test_albert_spiece_path_of_transformers_differs_only_on_digit_comma(dirs, loaded):
    """transformers 5 loading spiece.model alone skips AlbertConverter's '1,' penalty; ALBERT splits '1,' apart."""
    ours, _ = loaded["spm"]
    from_spiece = AlbertTokenizer.from_pretrained(dirs["spm"])
    for text in TEXTS[:-2]:
        assert _ours(ours.encode(text)) == _reference(from_spiece, text), repr(text)
    assert "1," in from_spiece.tokenize(DIGIT_COMMA)
    assert "1," not in ours.tokenize(DIGIT_COMMA)
    assert "".join(ours.tokenize(DIGIT_COMMA)) == "".join(from_spiece.tokenize(DIGIT_COMMA))


def test_albert_casing_and_accents_follow_the_settings(tmp_path, dirs):
    (tmp_path / "spiece.model").write_bytes((dirs["spm"] / "spiece.model").read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "keep_accents": True}))
    ours = load_tokenizer(tmp_path)
    hf = AlbertTokenizer.from_pretrained(dirs["spm_json"], do_lower_case=False, keep_accents=True)
    assert ours.tokenize("Café") != load_tokenizer(dirs["spm"]).tokenize("Café")
    for text, pair in PAIRS + [(text, None) for text in TEXTS]:
        assert _ours(ours.encode(text, pair)) == _reference(hf, text, pair), repr((text, pair))


def test_encode_batch_equals_encode(loaded):
    for ours, _ in loaded.values():
        texts = [text for text, _ in PAIRS]
        seconds = [pair for _, pair in PAIRS]
        assert ours.encode_batch(texts, seconds, max_length=9) == [
            ours.encode(text, pair, max_length=9) for text, pair in PAIRS]
        assert ours.encode_batch(TEXTS) == [ours.encode(text) for text in TEXTS]


def test_batch_padding_without_max_length_pads_to_longest(loaded):
    ours, _ = loaded["uncased"]
    batch = ours.encode_batch(["hello", "the quick brown fox jumps"], padding=True)
    assert len(batch[0].ids) == len(batch[1].ids)
    assert batch[0].ids[-1] == ours.pad_token_id and batch[0].attention_mask[-1] == 0


def _check_offsets(tokenizer, same):
    """Each token's span in its own input text reproduces it; special and padding tokens get (0, 0)."""
    for text, pair in PAIRS + [(text, None) for text in TEXTS]:
        encoding = tokenizer.encode(text, pair, max_length=40, padding=True)
        for token, (start, end), sequence in zip(encoding.tokens, encoding.offsets, encoding.sequence_ids):
            span = None if sequence is None else (text, pair)[sequence][start:end]
            if sequence is None:
                assert (start, end) == (0, 0)
            elif token in (tokenizer.unk_token, tokenizer.mask_token):
                assert span == token if token == tokenizer.mask_token else span
            else:
                assert same(token, span), repr((text, pair, token, span))


def test_wordpiece_offsets_point_at_the_token_text(loaded):
    for name in ("uncased", "cased"):
        ours, _ = loaded[name]
        normalize = ours.backend.normalizer.normalize_str
        _check_offsets(ours, lambda token, span: normalize(span).strip() == token.removeprefix("##"))


def test_bpe_offsets_point_at_the_token_text(loaded):
    ours, _ = loaded["bpe"]
    decoder = decoders.ByteLevel()

    def same(token, span):
        text = decoder.decode([token])
        return bool(span) if "\ufffd" in text else span == text.strip(" ")

    _check_offsets(ours, same)


def test_sentencepiece_offsets_point_at_the_token_text(loaded):
    ours, _ = loaded["spm"]
    normalize = ours.backend.normalizer.normalize_str

    def same(token, span):
        if token == "▁":  # a lone "▁" carries the offsets of the character it was prepended to
            return bool(span)
        if token.lstrip("▁") == '"' and span in ("`", "'"):  # `` and '' -> " keep only their second char
            return True
        return normalize(span).strip() == token.lstrip("▁")

    _check_offsets(ours, same)


def test_offsets_are_char_offsets_into_each_text(loaded):
    ours, _ = loaded["uncased"]
    encoding = ours.encode("naïve 北京", "Ångström")
    spans = [("naïve 北京", "Ångström")[seq][s:e] for seq, (s, e) in zip(encoding.sequence_ids, encoding.offsets)
             if seq is not None]
    assert "".join(spans) == "naïve北京Ångström"


@pytest.mark.parametrize("name, kind, names", [
    ("uncased", "wordpiece", ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"]),
    ("bpe", "bpe", ["<s>", "</s>", "<pad>", "<mask>", "<unk>"]),
    ("spm", "sentencepiece", ["[CLS]", "[SEP]", "<pad>", "[MASK]", "<unk>"]),
])
def test_special_tokens(loaded, name, kind, names):
    ours, hf = loaded[name]
    assert ours.kind == kind
    assert [ours.cls_token, ours.sep_token, ours.pad_token, ours.mask_token, ours.unk_token] == names
    assert [ours.cls_token_id, ours.sep_token_id, ours.pad_token_id, ours.mask_token_id, ours.unk_token_id] == [
        hf.cls_token_id, hf.sep_token_id, hf.pad_token_id, hf.mask_token_id, hf.unk_token_id]
    assert ours.vocab_size == len(hf)


def test_tokenize_convert_decode(loaded):
    for ours, hf in loaded.values():
        tokens = ours.tokenize("The quick brown fox")
        assert tokens == hf.tokenize("The quick brown fox")
        ids = ours.convert_tokens_to_ids(tokens)
        assert ours.convert_ids_to_tokens(ids) == tokens
        assert ours.convert_tokens_to_ids(["never-seen-token"]) == [ours.unk_token_id]
        assert ours.decode(ids).strip().lower() == "the quick brown fox"
        assert ours.decode(ours.encode("hello").ids, skip_special_tokens=True).strip() == "hello"
        with pytest.raises(UserError, match="token id 99999"):
            ours.convert_ids_to_tokens([99999])


def test_tokenizer_json_is_loaded_as_the_file_says(tmp_path, loaded):
    for name, kind in (("uncased", "wordpiece"), ("bpe", "bpe"), ("spm", "sentencepiece")):
        ours, hf = loaded[name]
        target = tmp_path / name
        target.mkdir()
        hf.backend_tokenizer.save(str(target / "tokenizer.json"))
        from_json = load_tokenizer(target, do_lower_case=False)
        assert from_json.kind == kind
        if kind != "sentencepiece":  # a JSON round trip moves Unigram scores by an ulp (serde_json parsing)
            assert from_json.fingerprint() == ours.fingerprint()
        for text, pair in PAIRS:
            assert _ours(from_json.encode(text, pair, max_length=9)) == _ours(ours.encode(text, pair, max_length=9))


def test_tokenizer_json_is_preferred_over_vocab_txt(tmp_path, dirs, loaded):
    (tmp_path / "vocab.txt").write_bytes((dirs["cased"] / "vocab.txt").read_bytes())
    loaded["uncased"][1].backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    assert load_tokenizer(tmp_path).fingerprint() == loaded["uncased"][0].fingerprint()


def test_do_lower_case_comes_from_config_yaml_then_tokenizer_config(tmp_path, dirs, loaded):
    uncased, cased = loaded["uncased"][0].fingerprint(), load_tokenizer(dirs["uncased"], False).fingerprint()
    (tmp_path / "vocab.txt").write_bytes((dirs["uncased"] / "vocab.txt").read_bytes())
    assert load_tokenizer(tmp_path).fingerprint() == uncased
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    assert load_tokenizer(tmp_path).fingerprint() == cased
    (tmp_path / "config.yaml").write_text("model_type: bert\ndo_lower_case: true\n")
    assert load_tokenizer(tmp_path).fingerprint() == uncased
    assert load_tokenizer(tmp_path, do_lower_case=False).fingerprint() == cased
    (tmp_path / "config.yaml").write_text("do_lower_case: maybe\n")
    with pytest.raises(UserError, match="do_lower_case"):
        load_tokenizer(tmp_path)


def test_cased_and_uncased_differ(loaded):
    assert loaded["uncased"][0].tokenize("Café") != load_tokenizer(
        loaded["uncased"][0].source, do_lower_case=False).tokenize("Café")


def test_save_carries_the_tokenizer_over(tmp_path, loaded):
    for name, (ours, _) in loaded.items():
        target = tmp_path / name
        written = ours.save(str(target))
        assert all(path.exists() for path in written)
        assert {path.name for path in written} - {"tokenizer_config.json"} <= set(TOKENIZER_FILES)
        assert load_tokenizer(target).fingerprint() == ours.fingerprint()
        assert not list(target.glob("*.tmp"))


def test_fingerprint_is_stable_and_ignores_call_settings(dirs, loaded):
    ours, _ = loaded["uncased"]
    before = ours.fingerprint()
    ours.encode("hello", max_length=8, padding=True)
    assert ours.fingerprint() == before == load_tokenizer(dirs["uncased"]).fingerprint()
    assert len(before) == 64
    assert before != loaded["cased"][0].fingerprint()


def test_missing_special_tokens_fail_only_when_used(tmp_path):
    (tmp_path / "vocab.txt").write_text("[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n")
    tokenizer = load_tokenizer(tmp_path)
    assert isinstance(tokenizer, Tokenizer)
    assert tokenizer.encode("hello worlds").ids == [1, 3, 4, 5, 2]
    for prop, token in (("mask_token", "[MASK]"), ("mask_token_id", "[MASK]"), ("pad_token_id", "[PAD]")):
        with pytest.raises(UserError, match=re.escape(token)) as caught:
            getattr(tokenizer, prop)
        assert str(tmp_path) in str(caught.value)
    with pytest.raises(UserError, match=r"\[PAD\]"):
        tokenizer.encode("hello", max_length=8, padding=True)


def test_vocab_without_cls_or_unk_is_rejected(tmp_path):
    (tmp_path / "vocab.txt").write_text("[UNK]\n[SEP]\nhello\n")
    with pytest.raises(UserError, match=r"\[CLS\]"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_text("[CLS]\n[SEP]\nhello\n")
    with pytest.raises(UserError, match=r"vocab.txt.*\[UNK\]"):
        load_tokenizer(tmp_path)


def test_max_length_below_special_tokens_is_a_user_error(loaded):
    with pytest.raises(UserError, match="max_length 2"):
        loaded["uncased"][0].encode("a", "b", max_length=2)


def test_missing_files_name_the_directory_and_expected_files(tmp_path):
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(UserError, match=re.escape(str(tmp_path)) + ".*vocab.txt.*spiece.model"):
        load_tokenizer(tmp_path)
    with pytest.raises(UserError, match="no tokenizer found"):
        load_tokenizer(tmp_path / "missing")


@pytest.mark.parametrize("files, culprit", [
    ({"vocab.txt": b"\xff\xfe\xfa not utf-8\n"}, "vocab.txt"),
    ({"vocab.txt": b""}, "vocab.txt"),
    ({"spiece.model": b"this is not a protobuf"}, "spiece.model"),
    ({"spiece.model": b"\x0a\x80"}, "spiece.model"),
    ({"spiece.model": b"\x0a\x03\x0a\x01a"}, "spiece.model"),
    ({"tokenizer.json": b"{not json"}, "tokenizer.json"),
    ({"vocab.json": b"[1, 2]", "merges.txt": b"#version: 0.2\n"}, "vocab.json"),
    ({"vocab.txt": b"[UNK]\n", "config.yaml": b"a: [unclosed"}, "config.yaml"),
    ({"vocab.txt": b"[UNK]\n", "tokenizer_config.json": b"{bad"}, "tokenizer_config.json"),
])
def test_corrupt_files_are_user_errors(tmp_path, files, culprit):
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(UserError, match=culprit) as caught:
        load_tokenizer(tmp_path)
    assert "\n" not in str(caught.value)


def test_truncated_spiece_model_is_a_user_error(tmp_path, dirs):
    (tmp_path / "spiece.model").write_bytes((dirs["spm"] / "spiece.model").read_bytes()[:-7])
    with pytest.raises(UserError, match="spiece.model"):
        load_tokenizer(tmp_path)
