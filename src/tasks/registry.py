"""Task name -> its module's Task class, imported on first use (each pulls in its own readers)."""
import importlib

from src.errors import UserError
from src.tasks.finetune import Task

TASKS = {
    "squad": ("src.tasks.question_answering", "QuestionAnswering"),
    "ner": ("src.tasks.token_classification", "TokenClassification"),
    "classification": ("src.tasks.sequence_classification", "SequenceClassification"),
    "race": ("src.tasks.multiple_choice", "MultipleChoice"),
    "open_entity": ("src.tasks.entity_typing", "EntityTyping"),
    "tacred": ("src.tasks.relation_classification", "RelationClassification"),
    "conll_spans": ("src.tasks.span_classification", "SpanClassification"),
}


def task_class(name: str, source: str) -> type[Task]:
    """The Task class registered under `name`; an unknown name is a UserError naming `source`."""
    if name not in TASKS:
        raise UserError(f"{source}: task {name!r} is not one of {', '.join(TASKS)}")
    module, attribute = TASKS[name]
    return getattr(importlib.import_module(module), attribute)
