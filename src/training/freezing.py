"""The run config's `freeze` list: parameter name patterns, fnmatch globs over whole weight names as
model.safetensors holds them (e.g. '*entity_embeddings.entity_embeddings.*'), whose parameters get no
gradient and no update (the LUKE repository freezes the entity embeddings when fine-tuning on SQuAD)."""
import logging
from fnmatch import fnmatchcase
from typing import List, Sequence

from mindspore import Parameter, nn

from src.errors import UserError
from src.models.weights import weights_of

logger = logging.getLogger(__name__)


def trained_params(model: nn.Cell, patterns: Sequence[str]) -> List[Parameter]:
    """The model's trainable parameters less those a pattern matches (by weight file name or parameter
    name); a pattern that matches none, or one that is not a string, is a UserError naming it."""
    named = weights_of(model) + [(param.name, param) for param in model.trainable_params()]
    frozen = {}
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise UserError(f"freeze: {pattern!r} is not a parameter name pattern; expected a list of "
                            "fnmatch patterns such as '*entity_embeddings.entity_embeddings.*'")
        matched = {id(param): name for name, param in named if fnmatchcase(name, pattern)}
        if not matched:
            raise UserError(f"freeze: pattern {pattern!r} matches no trainable parameter of the model "
                            f"(fnmatch over whole names such as {named[0][0]!r})")
        frozen.update(matched)
    params = model.trainable_params()
    kept = [param for param in params if id(param) not in frozen]
    if not kept:
        raise UserError(f"freeze: {', '.join(map(repr, patterns))} match every parameter; nothing is left to train")
    if frozen:
        logger.info("frozen (no updates): %s (%d values)", ", ".join(sorted(frozen.values())),
                    sum(param.size for param in params if id(param) in frozen))
    return kept
