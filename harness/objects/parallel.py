"""Running one function over many items on a bounded thread pool, results as they finish."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    done: Callable[[R], None] | None = None,
) -> Iterator[R]:
    """Apply ``fn`` to ``items`` on ``workers`` threads, at most ``2 * workers`` in flight.

    Results come in completion order. The first exception stops new submissions, waits for
    the running calls, and is raised.

    Args:
        fn: the work for one item.
        items: consumed lazily (a million keys are never all submitted at once).
        workers: threads.
        done: called (on the caller's thread) with each result, e.g. for progress.

    """
    source = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="copy") as pool:
        running: set[Future[R]] = set()
        exhausted = False
        while True:
            while not exhausted and len(running) < 2 * max(1, workers):
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                running.add(pool.submit(fn, item))
            if not running:
                return
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                error = future.exception()
                if error is not None:
                    for other in running:
                        other.cancel()
                    raise error
                result = future.result()
                if done is not None:
                    done(result)
                yield result
