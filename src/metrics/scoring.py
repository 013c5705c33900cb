"""Numeric scores of in-memory predictions for a dataset, as the official scripts compute them
(what fine-tuning evaluation logs and picks the best checkpoint by)."""
from typing import Any, Mapping, Optional

from src.metrics import cmrc, squad
from src.metrics.classification import canonical_task


def score_squad(dataset: str, data: Any, predictions: Mapping[str, str],
                null_odds: Optional[Mapping[str, float]] = None,
                source: str = "data file") -> dict[str, Any]:
    """SQuAD v1.1 (exact_match, f1), v2.0 (exact, f1, HasAns/NoAns, best_* with null odds) or
    CMRC2018 (F1, EM, AVERAGE) scores of `predictions` on the parsed data file."""
    task = canonical_task(dataset)
    if task in ("cmrc2018", "drcd"):
        return cmrc.evaluate(data, predictions, source)
    articles = squad.check_dataset(data, source)
    if task == "squad_v1":
        return squad.evaluate_v1(articles, predictions)
    return dict(squad.evaluate_v2(articles, predictions, null_odds or None))
