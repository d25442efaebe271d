"""Read-replica routing: figures that may be a few seconds old are read from a PostgreSQL
streaming replica, everything else from the primary.

With ``DATABASE_REPLICA_URL`` set, the settings add a ``replica`` database, ``ReplicaRouter``
and ``ReadYourWritesMiddleware``; without it none of this is installed and every scope below
does nothing.

- **Opt-in scopes.** Reads go to the replica only inside ``stale_reads()`` (or a view decorated
  with ``reads_may_be_stale``): the dashboards, drill-downs and their exports, the KPI API, the
  scorecard, the meeting pages and the snapshot refresh. Every other read (a rep's queue, forms,
  the admin, every service) and every write goes to the primary; so does a read inside a
  transaction open on the primary, which must see that transaction's own writes.
- **Read your writes.** A user who just posted (any unsafe method) reads from the primary for
  ``REPLICA_READ_YOUR_WRITES_SECONDS``: the middleware marks the user in the cache and the
  browser with a cookie that expires on its own, so the page after a form post shows the post.
- **Lag bound.** The scope asks ``replica_health()`` first: the replica's replay position against
  the primary's WAL position, checked at most every ``REPLICA_CHECK_SECONDS`` per process. A
  replica behind by more than ``REPLICA_MAX_LAG_SECONDS`` (the age of the last transaction it
  replayed, while it has not replayed all the primary wrote), or one that cannot be reached
  (``DATABASE_REPLICA_CONNECT_TIMEOUT``), is skipped and the primary serves; the change is
  logged once. A replica that fails in the middle of a GET page is marked down and the page is
  computed again on the primary.
- **Saying so.** A page served from a replica more than ``REPLICA_NOTICE_SECONDS`` behind (but
  within the bound) says "Figures as of <time> (replica N s behind)" where it shows its
  freshness (``request.replica_notice``, ``replica_notice`` in templates), and every response of
  such a view carries ``X-Figures-As-Of`` and ``X-Replica-Lag-Seconds`` (the KPI API's clients).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import StreamingHttpResponse

logger = logging.getLogger(__name__)

REPLICA = "replica"
PIN_COOKIE = "revops_primary_reads"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# The database a read in the current scope goes to (None: outside every scope, the primary).
_read_alias: ContextVar[str | None] = ContextVar("revops_read_alias", default=None)
FIGURES_AS_OF_HEADER = "X-Figures-As-Of"
REPLICA_LAG_HEADER = "X-Replica-Lag-Seconds"


# --- The decision (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaHealth:
    """What the last check found: whether the replica answered, and how far behind it was
    (0 when it had replayed everything the primary had written; None: unknown)."""

    reachable: bool
    lag_seconds: float | None = None
    as_of: datetime | None = None  # the commit time of the last transaction it replayed


# What the scope's choice was based on (None: no replica, or outside every scope).
_read_health: ContextVar[ReplicaHealth | None] = ContextVar("revops_read_health", default=None)


@dataclass(frozen=True)
class FiguresNotice:
    """A page's figures come from a replica this far behind: they are as of ``as_of``."""

    as_of: datetime
    lag_seconds: float

    @property
    def lag_text(self) -> str:
        return f"{self.lag_seconds:.0f}"


def figures_notice(
    alias: str, health: ReplicaHealth | None, *, notice_after: float
) -> FiguresNotice | None:
    """What a page read from ``alias`` should say about its figures' age: nothing when it read
    the primary or a replica at most ``notice_after`` seconds behind; otherwise the commit time
    of the last transaction the replica had replayed, and its lag."""
    if alias != REPLICA or health is None or not health.reachable:
        return None
    if health.lag_seconds is None or health.as_of is None or health.lag_seconds <= notice_after:
        return None
    return FiguresNotice(as_of=health.as_of, lag_seconds=health.lag_seconds)


def choose_read_alias(health: ReplicaHealth | None, *, max_lag: float, pinned: bool) -> str:
    """Where a read that may be stale goes: the replica when one is configured (``health`` not
    None), it answered, it is at most ``max_lag`` seconds behind, and the reader did not just
    write; the primary otherwise."""
    if health is None or pinned or not health.reachable or health.lag_seconds is None:
        return DEFAULT_DB_ALIAS
    return REPLICA if health.lag_seconds <= max_lag else DEFAULT_DB_ALIAS


# --- The router ------------------------------------------------------------------------------


class ReplicaRouter:
    """Writes, migrations and reads outside a stale-reads scope: the primary. Reads inside one:
    the database the scope chose, unless a transaction is open on the primary."""

    def db_for_read(self, model, **hints):
        alias = _read_alias.get()
        if alias is None or alias == DEFAULT_DB_ALIAS:
            return DEFAULT_DB_ALIAS
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return alias

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the primary's rows: an object read from either may refer to the other.
        return {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA} or None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


# --- Health and lag --------------------------------------------------------------------------

_LAG_SQL = """
    SELECT pg_is_in_recovery(),
           pg_is_in_recovery() AND (pg_last_wal_replay_lsn() IS NULL
                                    OR pg_last_wal_replay_lsn() < %s::pg_lsn),
           EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()),
           pg_last_xact_replay_timestamp()
"""

_health_lock = threading.Lock()
_health: tuple[float, ReplicaHealth] | None = None  # (checked at, monotonic; what it found)


def measure_replica_health() -> ReplicaHealth:
    """Ask the primary where its WAL is, then the replica how far it has replayed: caught up
    (lag 0), or behind by the age of the last transaction it replayed (an upper bound: the
    first one it is missing was committed after that). Unreachable: ``reachable=False``."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            (primary_lsn,) = cursor.fetchone()
    except (OperationalError, InterfaceError):
        # The primary itself is down: nothing to gain from the replica's answer.
        return ReplicaHealth(reachable=False)
    replica = connections[REPLICA]
    try:
        replica.close_if_unusable_or_obsolete()
        with replica.cursor() as cursor:
            cursor.execute(_LAG_SQL, [primary_lsn])
            in_recovery, behind, age, replayed_at = cursor.fetchone()
    except (OperationalError, InterfaceError) as error:
        _close_quietly(REPLICA)
        logger.debug("replica check failed: %s", error)
        return ReplicaHealth(reachable=False)
    if not in_recovery or not behind:
        return ReplicaHealth(reachable=True, lag_seconds=0.0, as_of=replayed_at)
    lag = float("inf") if age is None else max(0.0, float(age))
    return ReplicaHealth(reachable=True, lag_seconds=lag, as_of=replayed_at)


def replica_health() -> ReplicaHealth | None:
    """The replica's health, measured at most every ``REPLICA_CHECK_SECONDS`` in this process
    (None without a replica). A change of state (down, behind, back) is logged once."""
    global _health
    if not replica_configured():
        return None
    now = time.monotonic()
    with _health_lock:
        if _health is not None and now - _health[0] < settings.REPLICA_CHECK_SECONDS:
            return _health[1]
        previous = _health[1] if _health is not None else None
        current = measure_replica_health()
        _health = (time.monotonic(), current)
    _log_change(previous, current)
    return current


def replica_health_forget() -> None:
    """Measure again at the next scope (tests, and after a failure)."""
    global _health
    with _health_lock:
        _health = None


def _mark_replica_down(error: Exception) -> None:
    global _health
    with _health_lock:
        previous = _health[1] if _health is not None else None
        _health = (time.monotonic(), ReplicaHealth(reachable=False))
    _close_quietly(REPLICA)
    if previous is None or previous.reachable:
        logger.warning("Read replica failed mid-request, reading from the primary: %s", error)


def _state(health: ReplicaHealth | None) -> str:
    if health is None or not health.reachable:
        return "down"
    return "behind" if (health.lag_seconds or 0) > settings.REPLICA_MAX_LAG_SECONDS else "ok"


def _log_change(previous: ReplicaHealth | None, current: ReplicaHealth) -> None:
    was, now = (_state(previous) if previous is not None else "ok"), _state(current)
    if was == now:
        return
    if now == "down":
        logger.warning("Read replica unreachable: reading from the primary")
    elif now == "behind":
        logger.warning(
            "Read replica %.1f s behind (bound %s s): reading from the primary",
            current.lag_seconds,
            settings.REPLICA_MAX_LAG_SECONDS,
        )
    else:
        logger.info(
            "Read replica back within %s s: reading from it", settings.REPLICA_MAX_LAG_SECONDS
        )


def _close_quietly(alias: str) -> None:
    try:
        connections[alias].close()
    except Exception:  # a broken connection may fail to close; it is dropped either way
        connections[alias].connection = None


# --- Read your writes ------------------------------------------------------------------------


def _pin_key(user_id) -> str:
    return f"revops:primary-reads:user:{user_id}"


def reader_pinned(request) -> bool:
    """Whether this request's user wrote in the last ``REPLICA_READ_YOUR_WRITES_SECONDS``."""
    if request is None:
        return False
    if request.COOKIES.get(PIN_COOKIE):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and cache.get(_pin_key(user.pk)))


class ReadYourWritesMiddleware:
    """After any unsafe request, its user's reads go to the primary for a while: a cookie that
    expires by itself (the browser that posted) and a cache mark per user (the same user on
    another device or through the API)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in SAFE_METHODS:
            seconds = settings.REPLICA_READ_YOUR_WRITES_SECONDS
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=seconds,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                cache.set(_pin_key(user.pk), 1, seconds)
        return response


# --- Scopes ----------------------------------------------------------------------------------


@contextmanager
def stale_reads(request=None) -> Iterator[str]:
    """Reads in this block may come from the replica (when it is configured, healthy, within
    the lag bound, and ``request``'s user did not just write). Yields the alias chosen."""
    if not replica_configured():
        yield DEFAULT_DB_ALIAS
        return
    health = replica_health()
    alias = choose_read_alias(
        health,
        max_lag=settings.REPLICA_MAX_LAG_SECONDS,
        pinned=reader_pinned(request),
    )
    token = _read_alias.set(alias)
    health_token = _read_health.set(health)
    try:
        yield alias
    finally:
        _read_health.reset(health_token)
        _read_alias.reset(token)


def current_figures_notice() -> FiguresNotice | None:
    """The notice for the figures read in the current scope (None outside one)."""
    return figures_notice(
        current_read_alias(), _read_health.get(), notice_after=settings.REPLICA_NOTICE_SECONDS
    )


def reads_may_be_stale(view):
    """A view whose reads may come from the replica (``stale_reads`` around it). A GET that
    fails on the replica is computed again on the primary; a streamed response (CSV) reads its
    rows from the same database as the page."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        with stale_reads(request) as alias:
            notice = request.replica_notice = current_figures_notice()
            try:
                response = view(request, *args, **kwargs)
            except (OperationalError, InterfaceError) as error:
                if alias != REPLICA or request.method not in SAFE_METHODS:
                    raise
                _mark_replica_down(error)
                response = None
        if response is None:
            request.replica_notice = None
            return view(request, *args, **kwargs)
        if alias == REPLICA and isinstance(response, StreamingHttpResponse):
            response.streaming_content = _streamed_from(alias, response.streaming_content)
        if notice is not None:
            response[FIGURES_AS_OF_HEADER] = notice.as_of.isoformat()
            response[REPLICA_LAG_HEADER] = f"{notice.lag_seconds:.1f}"
        return response

    return wrapped


def _streamed_from(alias: str, content) -> Iterator:
    """``content`` iterated with reads routed to ``alias``: a streamed export runs its queries
    after the view has returned, outside the view's scope."""
    iterator = iter(content)
    while True:
        token = _read_alias.set(alias)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _read_alias.reset(token)
        yield chunk


def current_read_alias() -> str:
    """The database a read here would go to (for pages that say where their figures came from)."""
    return _read_alias.get() or DEFAULT_DB_ALIAS


def replica_notice(request) -> dict:
    """Template context (installed with a replica): ``replica_notice``, the page's
    ``FiguresNotice`` or None."""
    return {"replica_notice": getattr(request, "replica_notice", None)}
