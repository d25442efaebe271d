"""Independent reads of one request run at once, each on a database connection of its own.

A first view with no snapshot computes several independent parts (the overview's tiles, its
weekly trends and the goals card; a page and its breakdown; the meeting's sections; the content
page's reads). Run one after the other, the request
waits for each statement in turn while the database server has cores to spare; run side by side
on ``READ_THREADS`` threads, each part's statements wait in a PostgreSQL backend of their own.

Each part runs in a copy of the request's context (``contextvars``): the replica routing
(``revops.db_router``) and the request's shared KPI reads (``metrics.queries.shared``) follow it.
A pool thread keeps its connection between parts as a request thread does (``CONN_MAX_AGE``,
health checks: ``close_old_connections`` before and after each part); a web process holds up to
``1 + READ_THREADS`` sessions.

The parts run one after the other instead when a transaction is open on the request's
connection (its own writes, and a test's data, are invisible to other connections), on SQLite
(one writer, and the in-memory test database is one connection), from a part already in the
pool, with ``READ_THREADS`` 0, or when the caller says it is not worth it (``worth_it``: each
part a snapshot's look-up). Why, and what was not chosen: docs/adr/0012.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_threads = 0
_pool_lock = threading.Lock()
_in_pool = threading.local()  # ``running`` in a pool thread while it runs a part


def _executor() -> ThreadPoolExecutor:
    """This process's pool, made on first use (after a pre-forking server forked it)."""
    global _pool, _pool_pid, _pool_threads
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool_threads = settings.READ_THREADS
            _pool = ThreadPoolExecutor(max_workers=_pool_threads, thread_name_prefix="revops-read")
            _pool_pid = os.getpid()
        return _pool


def can_run_concurrently() -> bool:
    # Not from a part already in the pool: waiting there for the pool's threads could wait
    # for ever (each of them waiting too).
    if settings.READ_THREADS < 1 or getattr(_in_pool, "running", False):
        return False
    connection = connections[DEFAULT_DB_ALIAS]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _run_in_pool(context: contextvars.Context, part: Callable[[], Any]) -> Any:
    _in_pool.running = True
    close_old_connections()
    try:
        return context.run(part)
    finally:
        close_old_connections()
        _in_pool.running = False


def pool_connections_close() -> None:
    """Close the database connections the pool's threads keep (before a test database is
    dropped): one job per thread, each waiting for the others so that every thread takes one."""
    with _pool_lock:
        pool, threads = (_pool, _pool_threads) if _pool_pid == os.getpid() else (None, 0)
    if pool is None:
        return
    barrier = threading.Barrier(threads)

    def close() -> None:
        barrier.wait(timeout=30)
        connections.close_all()

    for future in [pool.submit(close) for _ in range(threads)]:
        future.result()


def run_concurrently(parts: Sequence[Callable[[], Any]], *, worth_it: bool = True) -> list[Any]:
    """Each part's result, in order. The first runs in the calling thread, the others in the
    pool; a part no pool thread has started by the time the caller is done with its own runs
    in the caller's thread too (it never waits for a part waiting for a thread). An exception
    of any part is raised here, after every part that started has finished. With ``worth_it``
    False (each part a look-up of a few milliseconds) they all run in this thread."""
    if len(parts) < 2 or not worth_it or not can_run_concurrently():
        return [part() for part in parts]
    pool = _executor()
    futures = [pool.submit(_run_in_pool, contextvars.copy_context(), part) for part in parts[1:]]
    try:
        results = [parts[0]()]
    except BaseException:
        # None left running past the request: those not started are dropped, the others
        # waited for.
        wait([future for future in futures if not future.cancel()])
        raise
    # First every part no thread has taken, here; then the others, waited for.
    stolen = [future.cancel() for future in futures]
    here = [_outcome(part) if took else None for part, took in zip(parts[1:], stolen, strict=True)]
    outcomes = [
        outcome or _outcome(future.result) for outcome, future in zip(here, futures, strict=True)
    ]
    for result, error in outcomes:
        if error is not None:
            raise error
        results.append(result)
    return results


def _outcome(call: Callable[[], Any]) -> tuple[Any, Exception | None]:
    try:
        return call(), None
    except Exception as error:
        return None, error
