"""SQuAD v1.1/v2.0 and CMRC2018: span start/end head, its loss, n-best postprocessing, official scores.

Features that carry LUKE's entity columns (entity-linked SQuAD) feed the model its seven inputs, and the
raw dev file is linked as the training features were (their manifest's "entities" record); all others,
a LUKE model's included, the three word inputs (LUKE then runs as RoBERTa)."""
from typing import Any, Callable, Dict, Optional

from mindspore import nn

from src.data.entities.linking import EntityLinker, EntityOptions
from src.data.entities.mention_db import MentionDB
from src.data.json_files import load_json
from src.data.tasks.squad import SquadOptions, read_squad
from src.data.tasks.squad_entities import SquadEntities
from src.data.tasks.squad_features import TRAIN_COLUMNS, build_squad_features, eval_columns
from src.data.tasks.squad_postprocess import postprocess_squad, write_predictions
from src.errors import UserError
from src.metrics.scoring import score_squad
from src.tasks.entity_task import INPUTS
from src.tasks.finetune import Evaluation, Task, recorded_options
from src.training.losses import span_loss


WORD_INPUTS, ENTITY_INPUTS = INPUTS[:3], INPUTS[3:]


def model_inputs(columns: Dict[str, Any]) -> tuple:
    """The names of the model's inputs among `columns`: all seven when the entity columns are there."""
    return INPUTS if all(name in columns for name in ENTITY_INPUTS) else WORD_INPUTS


def recorded_linker(record: Optional[Dict[str, Any]], tokenizer) -> Optional[SquadEntities]:
    """The entity linking the training features had (None when they had none), over the model's entity
    vocabulary; a vocabulary other than the one the features were linked with is a UserError."""
    if not record:
        return None
    vocab = getattr(tokenizer, "entity_vocab", None)
    if vocab is None or vocab.fingerprint() != record["entity_vocab"]["fingerprint"]:
        raise UserError(f"{tokenizer.source}: not the entity vocabulary the SQuAD features were linked with "
                        f"({record['entity_vocab']['file']}); rebuild them with this model directory")
    redirects = MentionDB(record["model_redirects"]) if record.get("model_redirects") else None
    return SquadEntities(EntityLinker(MentionDB(record["mention_db"]), vocab,
                                      recorded_options(EntityOptions, record["options"]), redirects))


class QuestionAnswering(Task):
    head = "question_answering"

    def __init__(self, spec: Dict[str, Any]):
        super().__init__(spec)
        self.inputs = INPUTS if spec.get("entity_inputs") else WORD_INPUTS
        self.columns = self.inputs + TRAIN_COLUMNS[len(WORD_INPUTS):]

    def loss_function(self, model: nn.Cell) -> Callable:
        count = len(self.inputs)

        def loss(*batch):
            start_logits, end_logits = model(*batch[:count])
            return span_loss(start_logits, end_logits, *batch[count:])
        return loss

    def evaluation(self, tokenizer, path: str, batch_size: int) -> "SquadEvaluation":
        return SquadEvaluation(self.spec, tokenizer, path, batch_size)


class SquadEvaluation(Evaluation):
    """Windows of a raw dev file; each call predicts, picks answers and scores them officially."""

    def __init__(self, spec: Dict[str, Any], tokenizer, path: str, batch_size: int = 32):
        self.spec, self.path, self.batch_size = spec, path, batch_size
        self.data = load_json(path)  # parsed once: examples for features, the whole file for scoring
        examples, self.skipped = read_squad(path, self.data)
        features = build_squad_features(examples, tokenizer, recorded_options(SquadOptions, spec["options"]),
                                        is_training=False, progress=True,
                                        entities=recorded_linker(spec.get("entities"), tokenizer))
        self.columns = eval_columns(features, examples)
        self.outputs = ({}, {}, {})
        self.scores: Dict[str, Any] = {}

    def __call__(self, model: nn.Cell) -> Dict[str, float]:
        inputs = tuple(self.columns[name] for name in model_inputs(self.columns))
        start_logits, end_logits = self.predict(model, inputs)
        version_2 = self.spec["dataset"] == "squad_v2" or self.spec.get("version_2_with_negative")
        self.outputs = postprocess_squad(self.columns, start_logits, end_logits, self.spec["n_best_size"],
                                         self.spec["max_answer_length"], bool(version_2),
                                         self.spec["null_score_diff_threshold"])
        predictions, _, null_odds = self.outputs
        self.scores = score_squad(self.spec["dataset"], self.data, predictions, null_odds or None, self.path)
        return {f"eval_{key}": float(value) for key, value in self.scores.items()
                if isinstance(value, (int, float))}

    def write_predictions(self, folder: str) -> list[str]:
        return [str(path) for path in write_predictions(folder, *self.outputs)]
