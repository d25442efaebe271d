"""KPI reads shared within one snapshot refresh round or one dashboard request.

The dashboards repeat each other's headline reads: the overview's tiles are the acceptance,
response time and SLA of the handoffs page, the conversion of the funnel page, the results,
pipeline and velocity of the pipeline page, and the goals read some of them again for the
quarter. A refresh round recomputes all of them for every hot filter set, one snapshot at a
time; inside ``reads_shared()`` a read decorated with ``shared_read`` runs once per
arguments and the snapshots after the first take its result.

A dashboard request shares the same way between the snapshots it computes (the overview's
tiles, its weekly trends and the goals card; the pipeline velocity and the win rate it is made
of). A snapshot computed in a scope is stored as computed when the scope began, so a result
taken from earlier in it never makes one look fresher than it is. The reads return frozen
dataclasses, which nobody mutates.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.utils import timezone

Read = TypeVar("Read", bound=Callable[..., Any])


@dataclass
class SharedReads:
    # The results are no older (the clock looked up when the scope opens: tests move it).
    since: datetime = field(default_factory=lambda: timezone.now())
    # Each read's result, or its future while a part running side by side computes it
    # (``revops.concurrent_reads``): a part needing it then waits instead of computing it too.
    results: dict[tuple, Future] = field(default_factory=dict)
    shared: int = 0  # reads answered from the scope's results
    lock: threading.Lock = field(default_factory=threading.Lock)


_round: ContextVar[SharedReads | None] = ContextVar("kpi_reads_shared", default=None)


@contextmanager
def reads_shared() -> Iterator[SharedReads]:
    """A scope (a refresh round, a dashboard request) in which each decorated read runs once
    per arguments; inside another, the outer one."""
    outer = _round.get()
    if outer is not None:
        yield outer
        return
    token = _round.set(SharedReads())
    try:
        yield _round.get()
    finally:
        _round.reset(token)


def shared_read(read: Read) -> Read:
    signature = inspect.signature(read)

    @functools.wraps(read)
    def shared(*args, **kwargs):
        round_ = _round.get()
        if round_ is None:
            return read(*args, **kwargs)
        # The arguments as the read sees them: positional or by name, defaults filled in.
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = (read.__module__, read.__qualname__, tuple(bound.arguments.items()))
        try:
            with round_.lock:
                found = round_.results.get(key)
                if found is None:
                    found = round_.results[key] = Future()
                    mine = True
                else:
                    mine = False
                    round_.shared += 1
        except TypeError:  # an argument that is not hashable: not shared
            return read(*args, **kwargs)
        if not mine:
            # Reads call reads below them only (their calls form no cycle), so the part
            # computing this one never waits for this part.
            return found.result()
        try:
            result = read(*args, **kwargs)
        except BaseException as error:
            with round_.lock:
                del round_.results[key]  # not shared: the next caller reads again
            found.set_exception(error)
            raise
        found.set_result(result)
        return result

    return shared  # type: ignore[return-value]
