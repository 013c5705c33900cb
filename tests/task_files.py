"""Small generated task files in the real formats (SQuAD JSON, CoNLL columns, GLUE TSV, RACE
JSON), each with a rule a tiny model can learn, for the fine-tuning end-to-end tests."""
import json
import random
from pathlib import Path

FILLER = ("red blue green cold warm fast slow tall short old new big small dark light soft hard "
          "loud calm wet dry").split()
ANSWERS = "apple river mountain tiger violin castle rocket garden silver thunder".split()
PEOPLE = [("anna", "smith"), ("boris", "king"), ("clara", "jones"), ("dmitri", "gray")]
CITIES = ["paris", "lima", "oslo", "cairo", "quito"]
GOOD, BAD = ["good", "great", "lovely"], ["bad", "awful", "poor"]


def _words(rng: random.Random, low: int, high: int) -> list[str]:
    return [rng.choice(FILLER) for _ in range(rng.randint(low, high))]


def squad(count: int, seed: int, unanswerable: float = 0.0) -> dict:
    """SQuAD: the answer is the word after "the answer is" somewhere in the context; with
    `unanswerable` > 0 (v2.0) that share of contexts does not say it and the answer is empty."""
    rng = random.Random(seed)
    articles = []
    for index in range(count):
        words = _words(rng, 10, 30)
        question = {"id": f"q{seed}-{index}", "question": "what is the answer?", "answers": []}
        if rng.random() >= unanswerable:
            answer = rng.choice(ANSWERS)
            at = rng.randint(0, len(words))
            words[at:at] = ["the", "answer", "is", answer]
        context = " ".join(words) + "."
        if "the answer is" in context:
            start = context.index("the answer is ") + len("the answer is ")
            question["answers"] = [{"text": context[start:].split()[0], "answer_start": start}]
        if unanswerable:
            question["is_impossible"] = not question["answers"]
        articles.append({"title": "generated", "paragraphs": [{"context": context, "qas": [question]}]})
    return {"version": "v2.0" if unanswerable else "1.1", "data": articles}


def conll(count: int, seed: int) -> str:
    """CoNLL-2003 columns (word POS chunk tag), IOB1 as the original files: PER and LOC names."""
    rng = random.Random(seed)
    blocks = ["-DOCSTART- -X- -X- O\n"]
    for _ in range(count):
        rows = [(word, "O") for word in _words(rng, 3, 8)]
        first, last = rng.choice(PEOPLE)
        at = rng.randint(0, len(rows))
        rows[at:at] = [(first, "I-PER"), (last, "I-PER")]
        at = rng.randint(0, len(rows))
        rows[at:at] = [(rng.choice(CITIES), "I-LOC")]
        blocks.append("".join(f"{word} NN O {tag}\n" for word, tag in rows))
    return "\n".join(blocks)


def sst2(count: int, seed: int) -> str:
    """GLUE SST-2 TSV (header sentence, label): positive when a positive word is present."""
    rng = random.Random(seed)
    lines = ["sentence\tlabel"]
    for _ in range(count):
        label = rng.randint(0, 1)
        words = _words(rng, 4, 10)
        words.insert(rng.randint(0, len(words)), rng.choice(GOOD if label else BAD))
        lines.append(f"{' '.join(words)}\t{label}")
    return "\n".join(lines) + "\n"


def race(count: int, seed: int) -> dict:
    """RACE articles: the right option is the answer word the article names; the three wrong ones
    are city names, which articles never hold (a rule a 2-layer model learns in a few hundred steps)."""
    rng = random.Random(seed)
    articles = []
    for index in range(count):
        right = rng.choice(ANSWERS)
        words = _words(rng, 6, 12)
        words.insert(rng.randint(0, len(words)), right)
        choices = rng.sample(CITIES, 3)
        answer = rng.randrange(4)
        choices.insert(answer, right)
        articles.append({"id": f"generated{seed}-{index}.txt", "article": " ".join(words) + ".",
                         "questions": ["which word does the article hold?"], "options": [choices],
                         "answers": ["ABCD"[answer]]})
    return articles


def write_all(folder: Path) -> dict:
    """Train and dev files of every task, and a corpus of all their text for a vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, seed, count in (("train", 1, 300), ("dev", 2, 60)):
        files[f"squad_{split}"] = folder / f"squad_{split}.json"
        files[f"squad_{split}"].write_text(json.dumps(squad(count, seed)))
        files[f"squad2_{split}"] = folder / f"squad2_{split}.json"
        files[f"squad2_{split}"].write_text(json.dumps(squad(count, seed, unanswerable=0.5)))
        files[f"conll_{split}"] = folder / f"conll_{split}.txt"
        files[f"conll_{split}"].write_text(conll(count, seed))
        files[f"sst2_{split}"] = folder / f"sst2_{split}.tsv"
        files[f"sst2_{split}"].write_text(sst2(count, seed))
        race_dir = folder / f"race_{split}" / "middle"
        race_dir.mkdir(parents=True, exist_ok=True)
        for number, article in enumerate(race(count, seed)):
            (race_dir / f"{number}.txt").write_text(json.dumps(article))
        files[f"race_{split}"] = folder / f"race_{split}"
    corpus = [article["paragraphs"][0]["context"] for article in squad(100, 3)["data"]]
    corpus += [line.split("\t")[0] for line in sst2(100, 3).splitlines()[1:]]
    corpus += [" ".join(row.split()[0] for row in block.splitlines()) for block in conll(100, 3).split("\n\n")[1:]]
    corpus += [" ".join([item["article"], *item["options"][0]]) for item in race(100, 3)]
    corpus += ["what is the answer?", "which word does the article hold?"] * 20
    files["corpus"] = folder / "corpus.txt"
    files["corpus"].write_text("\n".join(corpus) + "\n")
    return files
