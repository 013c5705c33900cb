"""A linear-chain CRF over token label scores (the BERT seed's NER option): its loss in graph mode,
Viterbi decoding in numpy at prediction time.

Sequences are given packed to the left: `mask` is 1 on the first n positions of a row and 0 after,
so ignored sub-tokens must be gathered out before the CRF sees the scores.
"""
import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Uniform, initializer


class CRF(nn.Cell):
    """Transition scores between labels, plus scores for starting and ending on each label."""

    def __init__(self, num_labels: int):
        super().__init__()
        self.num_labels = num_labels
        self.transitions = Parameter(initializer(Uniform(0.1), (num_labels, num_labels), ms.float32),
                                     name="transitions")
        self.start_transitions = Parameter(initializer(Uniform(0.1), (num_labels,), ms.float32),
                                           name="start_transitions")
        self.end_transitions = Parameter(initializer(Uniform(0.1), (num_labels,), ms.float32),
                                         name="end_transitions")

    def construct(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood of the gold tags over non-empty sequences.

        emissions (B, T, K) float, tags (B, T) int (any value where mask is 0), mask (B, T) 0/1.
        """
        emissions = emissions.astype(ms.float32)
        mask = mask.astype(ms.float32)
        tags = ops.maximum(tags.astype(ms.int32), 0)
        log_z = self._log_partition(emissions, mask)
        gold = self._gold_score(emissions, tags, mask)
        present = mask[:, 0]
        return ((log_z - gold) * present).sum() / ops.maximum(present.sum(), 1.0)

    def _gold_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Score of the gold path: start, emissions, transitions between kept positions, end."""
        emitted = ops.gather_elements(emissions, 2, tags.expand_dims(2)).squeeze(2)
        score = ops.gather(self.start_transitions, tags[:, 0], 0) + (emitted * mask).sum(1)
        pairs = tags[:, :-1] * self.num_labels + tags[:, 1:]
        steps = ops.gather(self.transitions.reshape(-1), pairs, 0)
        score = score + (steps * mask[:, 1:]).sum(1)
        lengths = mask.sum(1).astype(ms.int32)
        last = ops.gather_elements(tags, 1, ops.maximum(lengths - 1, 0).expand_dims(1)).squeeze(1)
        return score + ops.gather(self.end_transitions, last, 0)

    def _log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """The forward algorithm: log of the summed exp-scores of every label path."""
        alpha = self.start_transitions + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            scores = alpha.expand_dims(2) + self.transitions + emissions[:, t].expand_dims(1)
            stepped = ops.logsumexp(scores, 1)
            keep = mask[:, t].expand_dims(1)
            alpha = keep * stepped + (1 - keep) * alpha
        return ops.logsumexp(alpha + self.end_transitions, 1)

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Transition, start and end scores as numpy, as Viterbi decoding reads them."""
        return self.transitions.asnumpy(), self.start_transitions.asnumpy(), self.end_transitions.asnumpy()

    def decode(self, emissions: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
        """Viterbi: the best label path of each row's first `length` positions."""
        return viterbi(emissions, lengths, *self.tables())


def viterbi(emissions: np.ndarray, lengths: np.ndarray, transitions: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> list[list[int]]:
    """Highest-scoring label path per row, by dynamic programming with back-pointers."""
    paths = []
    for row, length in zip(emissions, lengths):
        if length == 0:
            paths.append([])
            continue
        score = start + row[0]
        back = []
        for t in range(1, length):
            candidates = score[:, None] + transitions
            back.append(candidates.argmax(0))
            score = candidates.max(0) + row[t]
        best = [int((score + end).argmax())]
        for pointers in reversed(back):
            best.append(int(pointers[best[-1]]))
        paths.append(best[::-1])
    return paths
