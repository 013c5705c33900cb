"""CoNLL-2003 span NER with LUKE: entity_span_classification head over every candidate span, cross entropy
(padding spans ignored), greedy non-overlapping decoding by score, entity F1 as seqeval counts it."""
from typing import Dict

import numpy as np
from mindspore import nn

from src.data.tasks.conll_spans import build_span_features, read_conll_documents
from src.data.tasks.entity_features import EntityTaskOptions
from src.files import write_text_atomic
from src.metrics.entities import decode_spans
from src.metrics.ner import entity_scores
from src.tasks.entity_task import EntityEvaluation, EntityTask
from src.training.losses import token_loss


class SpanEvaluation(EntityEvaluation):
    """Sentences of a raw dev file: every candidate span scored, decoded greedily into BIO tags per
    sentence, scored against every gold entity (those no candidate covers count as missed)."""

    def build(self, tokenizer, path: str, options: EntityTaskOptions,
              label2id: Dict[str, int]) -> Dict[str, np.ndarray]:
        documents = read_conll_documents(path)
        self.sentences = [sentence for document in documents for sentence in document]
        self.predicted: list[list[str]] = []
        return build_span_features(documents, tokenizer, options, label2id).columns

    def __call__(self, model: nn.Cell) -> Dict[str, float]:
        self.predicted = self.decode(self.logits(model))
        rows = [index for index, sentence in enumerate(self.sentences) if sentence.tags is not None]
        if not rows:
            return {}
        result = entity_scores([self.sentences[i].tags for i in rows], [self.predicted[i] for i in rows])
        return {f"eval_{key}": float(result[key]) for key in ("precision", "recall", "f1")}

    def decode(self, logits: np.ndarray) -> list[list[str]]:
        """Each sentence's BIO tags from its candidate spans' logits (sentences without candidates all O)."""
        spans: list[list[tuple[int, int]]] = [[] for _ in self.sentences]
        scores: list[list[np.ndarray]] = [[] for _ in self.sentences]
        for row, sentence in enumerate(self.columns["example_index"]):
            real = self.columns["entity_spans"][row, :, 0] >= 0
            spans[sentence] += [tuple(span) for span in self.columns["entity_spans"][row][real].tolist()]
            scores[sentence] += list(logits[row][real])
        return [decode_spans(spans[i], np.array(scores[i]).reshape(len(spans[i]), len(self.labels)), self.labels,
                             len(sentence.words)) for i, sentence in enumerate(self.sentences)]

    def write_predictions(self, folder: str) -> list[str]:
        """predictions.txt, conlleval's layout: word, gold tag, predicted tag; a blank line between sentences."""
        blocks = []
        for sentence, predicted in zip(self.sentences, self.predicted):
            gold = sentence.tags or ["O"] * len(sentence.words)
            blocks.append("".join(f"{word} {tag} {guess}\n"
                                  for word, tag, guess in zip(sentence.words, gold, predicted)))
        return [write_text_atomic(f"{folder}/predictions.txt", "\n".join(blocks))]


class SpanClassification(EntityTask):
    head = "entity_span_classification"
    objective = staticmethod(token_loss)
    evaluation_class = SpanEvaluation
