"""TACRED (relation classification) in the LUKE repository's format -> LUKE features.

Input: TACRED's train.json / dev.json / test.json, a JSON list of {"token": [words], "subj_start",
"subj_end", "obj_start", "obj_end" (inclusive word indices), "relation"}. The words are joined with single
spaces as LUKE's reader joins them; the subject and object become character spans of that text, encoded
as transformers' entity_pair_classification: <ent> around the subject, <ent2> around the object, [MASK]
and [MASK2] entities over them. 42 relations, no_relation first (LUKE's order: no_relation, then the rest
sorted). label_ids is the relation id (-1 without one). A pair cut by max_seq_length is skipped in the
train split and kept, with the entities that survived, in the eval split; both counted.
"""
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from src.data.tasks.features import FeatureSet, check_labelled, check_split, label_id, resolve_labels
from src.data.tasks.entity_features import (EntityTaskOptions, entity_columns, luke_tokenizer,
                                            read_json_records, word_spans, write_entity_features)
from src.data.tokenization import LukeTokenizer
from src.errors import UserError

NO_RELATION = "no_relation"
RELATIONS = (NO_RELATION,) + tuple(sorted(
    [f"org:{name}" for name in ("alternate_names", "city_of_headquarters", "country_of_headquarters", "dissolved",
                                "founded", "founded_by", "member_of", "members", "number_of_employees/members",
                                "parents", "political/religious_affiliation", "shareholders",
                                "stateorprovince_of_headquarters", "subsidiaries", "top_members/employees",
                                "website")]
    + [f"per:{name}" for name in ("age", "alternate_names", "cause_of_death", "charges", "children",
                                  "cities_of_residence", "city_of_birth", "city_of_death", "countries_of_residence",
                                  "country_of_birth", "country_of_death", "date_of_birth", "date_of_death",
                                  "employee_of", "origin", "other_family", "parents", "religion",
                                  "schools_attended", "siblings", "spouse", "stateorprovince_of_birth",
                                  "stateorprovince_of_death", "stateorprovinces_of_residence", "title")]))
TASK = "entity_pair_classification"


@dataclass(frozen=True)
class RelationExample:
    """One sentence with its subject and object character spans and relation (None when unlabeled)."""

    text: str
    subject: tuple[int, int]
    object: tuple[int, int]
    relation: str | None
    origin: str


def read_tacred(path: str) -> list[RelationExample]:
    """The relation examples of a TACRED JSON file."""
    fields = {"token": (list,), "subj_start": (int,), "subj_end": (int,), "obj_start": (int,), "obj_end": (int,),
              "relation": (str, type(None))}
    examples = []
    for origin, record in read_json_records(path, fields, "TACRED"):
        words = record["token"]
        if not words or not all(isinstance(word, str) for word in words):
            raise UserError(f"{origin}: \"token\" must be a non-empty list of words")
        spans = {}
        for role in ("subj", "obj"):
            start, end = record[f"{role}_start"], record[f"{role}_end"]
            if not 0 <= start <= end < len(words):
                raise UserError(f"{origin}: {role}_start/{role}_end {start}..{end} are not word indices of the "
                                f"{len(words)}-word sentence (the end is inclusive)")
            spans[role] = (start, end + 1)
        text, chars = joined_text(words, spans)
        examples.append(RelationExample(text, chars["subj"], chars["obj"], record.get("relation"), origin))
    return examples


def joined_text(words: list[str], spans: dict[str, tuple[int, int]]) -> tuple[str, dict[str, tuple[int, int]]]:
    """The words joined by single spaces, and each word span's character span in that text."""
    text, chars = word_spans(words)
    return text, {role: (chars[start][0], chars[end - 1][1]) for role, (start, end) in spans.items()}


def build_relation_features(examples: Sequence[RelationExample], tokenizer: LukeTokenizer,
                            options: EntityTaskOptions, label2id: dict[str, int], split: str) -> FeatureSet:
    """Columns: the word and entity columns, label_ids (N,), example_index (N,)."""
    built = FeatureSet(columns={})
    encodings, labels, indexes = [], [], []
    for index, example in enumerate(tqdm(examples, desc="tacred features", unit="sentence", disable=None)):
        built.counts["sentences"] += 1
        encoding = options.encode(tokenizer, example.text, [example.subject, example.object], TASK)
        if encoding.entities.cut_by_truncation:
            if split == "train":
                built.skipped["entity_beyond_max_seq_length"] += 1
                continue
            built.handled["entity_beyond_max_seq_length_kept"] += 1
        encodings.append(encoding)
        labels.append(-1 if example.relation is None else label_id(label2id, example.relation, example.origin))
        indexes.append(index)
    built.columns = {**entity_columns(encodings, options), "label_ids": np.array(labels, dtype=np.int32),
                     "example_index": np.array(indexes, dtype=np.int32)}
    return built


def create_tacred_data(input_path: str, model_dir: str, output: str, options: EntityTaskOptions,
                       split: str = "train", overwrite: bool = False, label_file: str | None = None) -> dict:
    """Read a TACRED file, build LUKE features and write them with a manifest."""
    started = time.monotonic()
    options.check()
    check_split(split)
    examples = read_tacred(input_path)
    check_labelled(split, (example.origin for example in examples if example.relation is None))
    labels, source = resolve_labels(split, label_file, official=RELATIONS)
    if NO_RELATION not in labels:
        raise UserError(f"{source}: the relation labels have no {NO_RELATION!r}; TACRED's F1 leaves it out")
    tokenizer = luke_tokenizer(model_dir, options.do_lower_case)
    built = build_relation_features(examples, tokenizer, options, {label: i for i, label in enumerate(labels)},
                                    split)
    return write_entity_features(output, built, tokenizer=tokenizer, task="tacred", dataset="tacred", split=split,
                                 options=options, labels=labels, label_source=source, input_path=input_path,
                                 model_dir=model_dir, overwrite=overwrite, started=started,
                                 extra={"no_relation_id": labels.index(NO_RELATION)})
