"""Small generated files of LUKE's entity tasks in the LUKE repository's formats (Open Entity JSON,
TACRED JSON; span NER reads task_files' CoNLL columns), each with a rule a tiny LUKE learns in a few
hundred steps, for the fine-tuning end-to-end tests."""
import json
import random
from pathlib import Path

from task_files import ANSWERS, CITIES, FILLER, PEOPLE, conll

COMPANIES = ["acme", "globex", "initech", "umbrella"]
DAYS = ["monday", "friday", "sunday"]
# Open Entity: a mention's kind -> its words and its (multi-label) types
KINDS = {"person": ([f"{first} {last}" for first, last in PEOPLE], ["person", "entity"]),
         "city": (CITIES, ["location", "place"]),
         "company": (COMPANIES, ["organization", "group"]),
         "day": (DAYS, ["time"])}
# TACRED: the object's kind -> the relation between a person subject and it
RELATIONS = {"city": "per:city_of_birth", "company": "per:employee_of", "person": "per:spouse",
             "age": "per:age"}
# SQuAD linking: the generated SQuAD article ("generated") links each answer word to its own page
LINKED = {word: word.capitalize() for word in ANSWERS}
ENTITIES = ["[PAD]", "[UNK]", "[MASK]", "[MASK2]", *LINKED.values()]


def wiki_pages() -> dict[str, str]:
    """Pages of a tiny Wikipedia dump (tests/wiki_dumps.py) for a mention DB that links the SQuAD answers."""
    anchors = " ".join(f"[[{title}|{word}]]" for word, title in LINKED.items())
    return {"Generated": f"A page that names {anchors}.", **{title: "A page." for title in LINKED.values()}}


def _filler(rng: random.Random, low: int, high: int) -> list[str]:
    return [rng.choice(FILLER) for _ in range(rng.randint(low, high))]


def _mention(rng: random.Random, kind: str) -> list[str]:
    if kind == "age":
        return [str(rng.randint(20, 90))]
    return rng.choice(KINDS[kind][0]).split()


def open_entity(count: int, seed: int) -> list[dict]:
    """Open Entity records: filler words around one mention whose kind decides its types."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        kind = rng.choice(sorted(KINDS))
        words = _filler(rng, 2, 6)
        at = rng.randint(0, len(words))
        mention = " ".join(_mention(rng, kind))
        start = len(" ".join(words[:at] + [""])) if at else 0
        words.insert(at, mention)
        records.append({"sent": " ".join(words), "start": start, "end": start + len(mention),
                        "labels": list(KINDS[kind][1])})
    return records


def tacred(count: int, seed: int) -> list[dict]:
    """TACRED records: a person subject, an object whose kind decides the relation, and a
    fifth of pairs whose object is a filler word (no_relation)."""
    rng = random.Random(seed)
    records = []
    for index in range(count):
        subject = _mention(rng, "person")
        kind = rng.choice(sorted(RELATIONS) + ["none"])
        obj = [rng.choice(FILLER)] if kind == "none" else _mention(rng, kind)
        parts = [_filler(rng, 1, 4), subject, _filler(rng, 1, 3), obj, _filler(rng, 0, 3)]
        if rng.random() < 0.5:
            parts[1], parts[3] = obj, subject
        tokens = [word for part in parts for word in part]
        spans = {}
        position = 0
        for number, part in enumerate(parts):
            spans[number] = (position, position + len(part) - 1)
            position += len(part)
        (subj_start, subj_end), (obj_start, obj_end) = (spans[1], spans[3]) if parts[1] is subject else \
            (spans[3], spans[1])
        records.append({"id": f"t{seed}-{index}", "token": tokens, "subj_start": subj_start, "subj_end": subj_end,
                        "obj_start": obj_start, "obj_end": obj_end,
                        "relation": RELATIONS.get(kind, "no_relation")})
    return records


def write_entity_tasks(folder: Path) -> dict:
    """Train and dev files of the three entity tasks, and a corpus of their text for a BPE vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, seed, count in (("train", 1, 300), ("dev", 2, 60)):
        files[f"open_entity_{split}"] = folder / f"open_entity_{split}.json"
        files[f"open_entity_{split}"].write_text(json.dumps(open_entity(count, seed)))
        files[f"tacred_{split}"] = folder / f"tacred_{split}.json"
        files[f"tacred_{split}"].write_text(json.dumps(tacred(count, seed)))
        files[f"conll_spans_{split}"] = folder / f"conll_spans_{split}.txt"
        files[f"conll_spans_{split}"].write_text(conll(count, seed))
    corpus = [record["sent"] for record in open_entity(100, 3)]
    corpus += [" ".join(record["token"]) for record in tacred(100, 3)]
    corpus += [" ".join(row.split()[0] for row in block.splitlines()) for block in conll(100, 3).split("\n\n")[1:]]
    files["corpus"] = corpus
    return files
