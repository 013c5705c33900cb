"""Official metrics: SQuAD v1.1/v2.0 (squad), CMRC 2018 (cmrc), entity-level NER scores as
seqeval/conlleval count them (ner), classification and regression metrics and the table of
which task reports which (classification). Plain Python and numpy; no MindSpore."""
from src.metrics.classification import (TASK_METRICS, accuracy, canonical_task, classification_scores,
                                        f1_binary, matthews_corrcoef, pearson, primary_metric, spearman,
                                        task_metrics)
from src.metrics.ner import entity_scores, get_entities

__all__ = ["TASK_METRICS", "accuracy", "canonical_task", "classification_scores", "entity_scores",
           "f1_binary", "get_entities", "matthews_corrcoef", "pearson", "primary_metric", "spearman",
           "task_metrics"]
