"""Results of chunked work in chunk order from a spawn process pool, a bounded number in flight,
so a builder's output is the same for any number of workers and its memory stays flat."""
import multiprocessing
from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar

_R = TypeVar("_R")


def ordered_results(chunks: Iterable[tuple], work: Callable[..., _R], workers: int,
                    initializer: Callable, initargs: tuple) -> Iterator[_R]:
    """work(*chunk) for each chunk, in order, from `workers` spawned processes set up by
    initializer(*initargs); at most 2 * workers chunks in flight."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=initializer, initargs=initargs) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(work, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
