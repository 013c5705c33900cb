"""LUKE pretraining end to end: a generated Wikipedia dump -> DumpDB -> LUKE MindRecord ->
run_pretrain.py; masked-entity accuracy rises above always guessing the most frequent entity,
and the saved model directory is a complete LUKE directory."""
import json
import os
import random
import subprocess
import sys

from src.data.entities.dump_db import build_dump_db
from src.data.entities.vocab import load_entity_vocab
from tiny_tokenizers import train_bpe
from wiki_dumps import write_dump

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CITIES = ["Lyon", "Oslo", "Quito", "Hanoi", "Dakar", "Perth", "Kyoto", "Lima"]
MODEL = """model_type: luke
position_embedding_type: padding_offset
pad_token_id: 1
type_vocab_size: 1
layer_norm_eps: 1.0e-05
hidden_size: 48
num_hidden_layers: 2
num_attention_heads: 4
intermediate_size: 96
max_position_embeddings: 66
entity_emb_size: 24
hidden_dropout_prob: 0.0
attention_probs_dropout_prob: 0.0
"""


def pages(count=40, seed=0):
    """Pages whose links name cities by their own words: an entity follows from its mention."""
    rng = random.Random(seed)
    fillers = "people often travel to and from the old market near the river".split()
    out = {}
    for n in range(count):
        sentences = []
        for _ in range(4):
            city = rng.choice(CITIES)
            words = rng.sample(fillers, 4)
            sentences.append(f"{' '.join(words).capitalize()} [[{city}]] today.")
        out[f"Page {n}"] = " ".join(sentences)
    return out


def run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_masked_entity_accuracy_rises_above_its_baseline(tmp_path):
    corpus = pages()
    db = build_dump_db(str(write_dump(tmp_path / "wiki.xml.bz2", corpus, {})), str(tmp_path / "wiki.db"))
    model_dir = train_bpe([text.replace("[[", "").replace("]]", "") for text in corpus.values()] * 2,
                          tmp_path / "luke", 300)
    titles = ["[PAD]", "[UNK]", "[MASK]"] + CITIES
    (model_dir / "entity_vocab.json").write_text(json.dumps({t: i for i, t in enumerate(titles)}))
    made = run("create_data.py", "pretrain", "--objective", "luke", "--dump_db", db.path,
               "--model_dir", str(model_dir), "--output", str(tmp_path / "data"),
               "--max_seq_length", "64", "--max_entity_length", "8", "--max_mention_length", "4",
               "--max_predictions_per_seq", "6", "--masked_entity_prob", "0.3",
               "--masking", "dynamic")
    assert made.returncode == 0, made.stderr[-2000:]
    (tmp_path / "model.yaml").write_text(MODEL)
    trained = run("run_pretrain.py", "--config", "configs/tasks/pretrain_luke.yaml",
                  f"model_config={tmp_path / 'model.yaml'}", f"data_dir={tmp_path / 'data'}",
                  f"eval_data_dir={tmp_path / 'data'}", f"output_dir={tmp_path / 'out'}",
                  "batch_size=8", "train_steps=400", "learning_rate=2e-3", "warmup_steps=10",
                  "save_checkpoint_steps=200", "logging_steps=50", "eval_steps=200", "eval_batches=8")
    assert trained.returncode == 0, trained.stderr[-3000:]
    records = [json.loads(line) for line in open(tmp_path / "out" / "metrics.jsonl")]
    evals = [r for r in records if "eval_entity_accuracy" in r]
    assert evals, records[-3:]
    last = evals[-1]
    assert last["eval_entity_accuracy"] > last["eval_entity_baseline"] + 0.2, last
    saved = tmp_path / "out" / "model_last"
    assert load_entity_vocab(str(saved)).size == len(titles)
    assert (saved / "vocab.json").is_file() and (saved / "merges.txt").is_file()
