"""NER: a label per word (on its first sub-token) with softmax or a CRF; entity-level scores."""
from collections import Counter
from typing import Any, Callable, Dict

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from src.data.tasks.ner import NerOptions, build_ner_features, read_ner_file
from src.files import write_text_atomic
from src.metrics.ner import entity_scores
from src.models.crf import viterbi
from src.tasks.finetune import Evaluation, Task, recorded_options
from src.training.losses import token_loss

INPUTS = ("input_ids", "input_mask", "segment_ids")
IGNORED = -1  # label of later sub-tokens, special tokens and padding


def pack_words(label_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first-sub-token positions moved to the front (padded with 0) and a 0/1 mask of them:
    the CRF chains words, not sub-tokens."""
    words = label_ids != IGNORED
    order = np.argsort(~words, axis=1, kind="stable").astype(np.int32)
    mask = (np.arange(words.shape[1])[None] < words.sum(1)[:, None]).astype(np.int32)
    return order * mask, mask


def word_paths(logits: np.ndarray, label_ids: np.ndarray, crf=None) -> list[list[int]]:
    """Each row's label ids for its words (first sub-tokens): Viterbi over the CRF's tables
    (a CRF cell or an export's, anything with `tables()`), else the best label per word."""
    positions, mask = pack_words(label_ids)
    scores = np.take_along_axis(logits, positions[:, :, None], 1)
    lengths = mask.sum(1)
    if crf is not None:
        return viterbi(scores, lengths, *crf.tables())
    return [row[:length].argmax(-1).tolist() for row, length in zip(scores, lengths)]


class TokenClassification(Task):
    head = "token_classification"
    columns = INPUTS + ("label_ids",)

    def model_overrides(self) -> Dict[str, Any]:
        return {"num_labels": len(self.spec["labels"]), "label_names": list(self.spec["labels"]),
                "use_crf": bool(self.spec.get("use_crf"))}

    def prepare(self, batch: Dict[str, np.ndarray]) -> tuple:
        """Softmax: the four columns; CRF: plus the packed word positions and their mask."""
        inputs = tuple(batch[name] for name in self.columns)
        if not self.spec.get("use_crf"):
            return inputs
        return inputs + pack_words(batch["label_ids"])

    def loss_function(self, model: nn.Cell) -> Callable:
        if not self.spec.get("use_crf"):
            def loss(input_ids, input_mask, segment_ids, label_ids):
                return token_loss(model(input_ids, input_mask, segment_ids), label_ids)
            return loss

        def crf_loss(input_ids, input_mask, segment_ids, label_ids, positions, word_mask):
            emissions = model(input_ids, input_mask, segment_ids)
            index = positions.astype(ms.int32).expand_dims(2).broadcast_to(positions.shape + (emissions.shape[2],))
            packed = ops.gather_elements(emissions, 1, index)
            tags = ops.gather_elements(label_ids.astype(ms.int32), 1, positions.astype(ms.int32))
            return model.crf(packed, tags, word_mask)
        return crf_loss

    def evaluation(self, tokenizer, path: str, batch_size: int) -> "NerEvaluation":
        return NerEvaluation(self.spec, tokenizer, path, batch_size)


class NerEvaluation(Evaluation):
    """Word-level tags of a raw dev file: predicted on first sub-tokens (Viterbi with a CRF), words
    cut by max_seq_length predicted O, scored against every gold word as seqeval does."""

    def __init__(self, spec: Dict[str, Any], tokenizer, path: str, batch_size: int):
        self.spec, self.batch_size = spec, batch_size
        self.labels = list(spec["labels"])
        options = recorded_options(NerOptions, spec["options"])
        self.examples, _ = read_ner_file(path, options.format, Counter())
        label2id = {label: index for index, label in enumerate(self.labels)}
        self.columns = build_ner_features(self.examples, tokenizer, options, label2id).columns
        self.predicted: list[list[str]] = []

    def __call__(self, model: nn.Cell) -> Dict[str, float]:
        (logits,) = self.predict(model, tuple(self.columns[name] for name in INPUTS))
        paths = word_paths(logits, self.columns["label_ids"], model.crf if self.spec.get("use_crf") else None)
        self.predicted = [[self.labels[i] for i in path] + ["O"] * (len(self.examples[index].words) - len(path))
                          for path, index in zip(paths, self.columns["example_index"])]
        gold = [tags.split() for tags in self.columns["tags"]]
        rows = [row for row, tags in enumerate(gold) if tags]
        if not rows:
            return {}
        result = entity_scores([gold[row] for row in rows], [self.predicted[row] for row in rows])
        return {f"eval_{key}": float(result[key]) for key in ("precision", "recall", "f1")}

    def write_predictions(self, folder: str) -> list[str]:
        """predictions.txt, conlleval's layout: word, gold tag, predicted tag; a blank line between
        sentences (a whitespace word is written as [SPACE] to keep the columns)."""
        blocks = []
        for row, index in enumerate(self.columns["example_index"]):
            words = self.examples[index].words
            gold = self.columns["tags"][row].split() or ["O"] * len(words)
            blocks.append("".join(f"{word if word.strip() else '[SPACE]'} {tag} {guess}\n"
                                  for word, tag, guess in zip(words, gold, self.predicted[row])))
        return [write_text_atomic(f"{folder}/predictions.txt", "\n".join(blocks))]
