"""KPI reads shared within one snapshot refresh round.

The dashboards repeat each other's headline reads: the overview's tiles are the acceptance,
response time and SLA of the handoffs page, the conversion of the funnel page, the results,
pipeline and velocity of the pipeline page, and the goals read some of them again for the
quarter. A refresh round recomputes all of them for every hot filter set, one snapshot at a
time; inside ``reads_shared()`` a read decorated with ``shared_in_round`` runs once per
arguments and the snapshots after the first take its result.

Only the round shares: a request computes its own page, and a round's snapshots are stored as
computed at the round's start, so a result taken from earlier in the round never makes one look
fresher than it is. The reads return frozen dataclasses, which nobody mutates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

Read = TypeVar("Read", bound=Callable[..., Any])


@dataclass
class SharedReads:
    results: dict[tuple, Any] = field(default_factory=dict)
    shared: int = 0  # reads answered from the round's results


_round: ContextVar[SharedReads | None] = ContextVar("kpi_reads_shared", default=None)


@contextmanager
def reads_shared() -> Iterator[SharedReads]:
    """A scope (one refresh round) in which each decorated read runs once per arguments."""
    token = _round.set(SharedReads())
    try:
        yield _round.get()
    finally:
        _round.reset(token)


def shared_in_round(read: Read) -> Read:
    @functools.wraps(read)
    def shared(*args, **kwargs):
        round_ = _round.get()
        if round_ is None:
            return read(*args, **kwargs)
        key = (read.__module__, read.__qualname__, args, tuple(sorted(kwargs.items())))
        try:
            found = round_.results[key]
        except TypeError:  # an argument that is not hashable: not shared
            return read(*args, **kwargs)
        except KeyError:
            found = round_.results[key] = read(*args, **kwargs)
        else:
            round_.shared += 1
        return found

    return shared  # type: ignore[return-value]
