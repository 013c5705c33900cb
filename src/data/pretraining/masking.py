"""Masked-LM masking: BERT's 80/10/10 over whole words or tokens, for static files and the dynamic reader.

Static masking runs when the instances are built; dynamic masking (RoBERTa, ERNIE) runs in the
dataset map every time a row is read, with the spec the manifest recorded.
"""
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.data.tokenization import Tokenizer


@dataclass(frozen=True)
class MaskingSpec:
    """The token ids masking needs: [MASK], ids never masked (special), ids drawn as random replacements."""

    mask_id: int
    special_ids: np.ndarray
    replacement_ids: np.ndarray
    masked_lm_prob: float
    max_predictions: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer, masked_lm_prob: float, max_predictions: int) -> "MaskingSpec":
        """Build the spec; a vocabulary without [MASK]/[CLS]/[SEP]/[PAD] is a UserError naming it."""
        needed = [tokenizer.mask_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id]
        added = tokenizer.backend.get_added_tokens_decoder()
        special = np.array(sorted({*needed, *(i for i, token in added.items() if token.special)}), dtype=np.int32)
        replacement = np.setdiff1d(np.arange(tokenizer.vocab_size, dtype=np.int32), special)
        return cls(needed[0], special, replacement, masked_lm_prob, max_predictions)


def mask_tokens(ids: np.ndarray, starts: np.ndarray, spec: MaskingSpec,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mask one instance (see mask_batch); the dynamic-masking map calls this per row."""
    masked, positions, labels, weights = mask_batch(ids[None], starts[None], spec, rng)
    return masked[0], positions[0], labels[0], weights[0]


def mask_batch(ids: np.ndarray, starts: np.ndarray, spec: MaskingSpec,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BERT's masking of rows of ids: whole words (by `starts`) up to masked_lm_prob of each row, 80/10/10.

    Words are taken in random order, skipping any that would pass the row's budget (as BERT does).
    Returns (masked ids, positions, original ids, weights); the last three padded to max_predictions.
    """
    rows, length = ids.shape
    maskable = ~np.isin(ids, spec.special_ids)
    previous = np.zeros_like(maskable)
    previous[:, 1:] = maskable[:, :-1]
    is_start = maskable & (starts.astype(bool) | ~previous)
    group_starts = np.flatnonzero(is_start)
    sizes = np.bincount((np.cumsum(is_start.ravel()) - 1)[maskable.ravel()], minlength=len(group_starts))
    group_rows = group_starts // length
    order = np.lexsort((rng.random(len(group_starts)), group_rows))
    bounds = np.searchsorted(group_rows[order], np.arange(rows + 1)).tolist()
    available = maskable.sum(axis=1)
    budgets = np.where(available > 0, np.minimum(spec.max_predictions,
                                                 np.maximum(1, np.rint(available * spec.masked_lm_prob))), 0)
    if len(sizes) and sizes.max() > 1:
        positions, totals = _choose_words(order, bounds, sizes, group_starts % length, budgets, spec.max_predictions)
    else:
        positions, totals = _choose_tokens(order, bounds, group_starts, length, budgets, spec.max_predictions)
    weights = (np.arange(spec.max_predictions) < totals[:, None])
    labels = np.where(weights, np.take_along_axis(ids, positions, axis=1), 0).astype(np.int32)
    masked = ids.copy()
    draw = rng.random(positions.shape)
    row_index = np.broadcast_to(np.arange(rows)[:, None], positions.shape)
    to_mask, to_randomize = weights & (draw < 0.8), weights & (draw >= 0.9)
    masked[row_index[to_mask], positions[to_mask]] = spec.mask_id
    replacements = spec.replacement_ids[rng.integers(0, len(spec.replacement_ids), int(to_randomize.sum()))]
    masked[row_index[to_randomize], positions[to_randomize]] = replacements
    return masked, positions, labels, weights.astype(np.float32)


def _choose_words(order: np.ndarray, bounds: list[int], sizes: np.ndarray, starts: np.ndarray, budgets: np.ndarray,
                  width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, words in shuffled order while they fit the budget (a word that would pass it is skipped)."""
    positions = np.zeros((len(budgets), width), dtype=np.int32)
    totals = np.zeros(len(budgets), dtype=np.int64)
    order, sizes, starts = order.tolist(), sizes.tolist(), starts.tolist()
    for row, budget in enumerate(budgets.tolist()):
        chosen: list[int] = []
        for group in order[bounds[row]:bounds[row + 1]]:
            if len(chosen) >= budget:
                break
            if len(chosen) + sizes[group] <= budget:
                chosen.extend(range(starts[group], starts[group] + sizes[group]))
        chosen.sort()
        positions[row, :len(chosen)] = chosen
        totals[row] = len(chosen)
    return positions, totals


def _choose_tokens(order: np.ndarray, bounds: list[int], flat_starts: np.ndarray, length: int, budgets: np.ndarray,
                   width: int) -> tuple[np.ndarray, np.ndarray]:
    """_choose_words when every word is one token: the first `budget` of each row's shuffled order, vectorized."""
    rows = len(budgets)
    row_of = flat_starts[order] // length
    rank = np.arange(len(order)) - np.asarray(bounds[:-1], dtype=np.int64)[row_of]
    picked = np.sort(flat_starts[order][rank < budgets[row_of]])
    picked_rows = picked // length
    first = np.searchsorted(picked_rows, np.arange(rows))
    positions = np.zeros((rows, width), dtype=np.int32)
    positions[picked_rows, np.arange(len(picked)) - first[picked_rows]] = picked % length
    return positions, np.bincount(picked_rows, minlength=rows)


class DynamicMasker:
    """The dataset map for dynamic masking: masks each row anew every time it is read (RoBERTa, ERNIE)."""

    def __init__(self, spec: MaskingSpec, seed: int) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(seed)

    def __call__(self, input_ids: np.ndarray, word_starts: np.ndarray) -> tuple[np.ndarray, ...]:
        """(input_ids, word_starts) -> (masked input_ids, masked_lm_positions, masked_lm_ids, masked_lm_weights)."""
        masked, positions, labels, weights = mask_tokens(input_ids, word_starts, self.spec, self.rng)
        return masked.astype(np.int32), positions, labels, weights


def masking_spec(manifest: dict[str, Any]) -> MaskingSpec:
    """Rebuild the masking spec the manifest recorded (no tokenizer needed at training time)."""
    recorded = manifest["masking_spec"]
    special = np.array(recorded["special_ids"], dtype=np.int32)
    replacement = np.setdiff1d(np.arange(recorded["vocab_size"], dtype=np.int32), special)
    return MaskingSpec(recorded["mask_id"], special, replacement, manifest["options"]["masked_lm_prob"],
                       manifest["options"]["max_predictions_per_seq"])
