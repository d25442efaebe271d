"""Dashboard figures served from snapshots that Celery keeps at most a minute old.

The KPI queries read raw facts; over a million leads some take seconds. So every dashboard view
a user opens is registered as a snapshot key (page + period + filters). The first request for a
key computes it in the request; from then on a beat task recomputes every key opened in the last
``HOT_SECONDS`` before it is ``REFRESH_SECONDS`` old, and the page is served from the stored
result, never older than ``MAX_AGE_SECONDS``. A key nobody opens goes cold and is dropped.

The payload is the page's KPI dataclasses, pickled: written and read only by this application,
never taken from a request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from metrics.kpis import KpiFilters, Period
from metrics.models import KpiSnapshot
from metrics.queries.shared import reads_shared

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 60
REFRESH_SECONDS = 30
HOT_SECONDS = 15 * 60
COLD_SECONDS = 24 * 3600
# Writing "last requested" on every view would make reads write; once in a while is enough.
TOUCH_SECONDS = 60

_BUILDERS: dict[str, Callable[[Period, KpiFilters], Any]] = {}
# page -> the period its figures depend on, for pages that depend on less than the period
_PERIODS: dict[str, Callable[[Period], Period]] = {}


def register(
    page: str,
    build: Callable[[Period, KpiFilters], Any],
    *,
    depends_on: Callable[[Period], Period] | None = None,
) -> None:
    """``build`` computes the page; ``depends_on`` maps a period to the one its figures depend
    on (the weekly trends: only the period's end), so periods that share it share a snapshot."""
    _BUILDERS[page] = build
    if depends_on is not None:
        _PERIODS[page] = depends_on


def _depended_on(page: str, period: Period) -> Period:
    depends_on = _PERIODS.get(page)
    return period if depends_on is None else depends_on(period)


def _params(page: str, period: Period, filters: KpiFilters) -> dict:
    period = _depended_on(page, period)
    return {
        "page": page,
        "first_day": period.first_day.isoformat(),
        "last_day": period.last_day.isoformat(),
        "time_zone": str(period.start.tzinfo),
        "filters": {
            field.name: (
                list(value) if isinstance(value := getattr(filters, field.name), tuple) else value
            )
            for field in dataclasses.fields(filters)
        },
    }


def snapshot_key(params: dict) -> str:
    canonical = repr(sorted((k, repr(v)) for k, v in params.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _from_params(params: dict) -> tuple[Period, KpiFilters]:
    period = Period.from_dates(
        date.fromisoformat(params["first_day"]),
        date.fromisoformat(params["last_day"]),
        params.get("time_zone") or settings.DISPLAY_TIME_ZONE,
    )
    return period, KpiFilters(**params["filters"])


def page_data(page: str, period: Period, filters: KpiFilters) -> tuple[Any, datetime]:
    """The page's figures and when they were computed (at most a minute ago)."""
    [found] = pages_data([(page, period, filters)])
    return found


def page_data_part(
    page: str, period: Period, filters: KpiFilters
) -> tuple[Callable[[], tuple[Any, datetime]], bool]:
    """The page's figures as a part of a view (``revops.concurrent_reads``), and whether it
    computes them (a first view, whose parts are worth running side by side): the fresh
    snapshot is looked up here, once."""
    [found] = pages_data([(page, period, filters)], compute=False)
    if found is not None:
        return (lambda: found), False
    return partial(page_data, page, period, filters), True


def pages_data(
    requests: list[tuple[str, Period, KpiFilters]], *, compute: bool = True
) -> list[tuple[Any, datetime]]:
    """Each page's figures and when they were computed (at most a minute ago), for several pages
    at once (a scorecard reads one per goal): the fresh snapshots in one query, the others
    computed (sharing the request's reads) and stored together in one statement; with
    ``compute`` False, None for each of the others."""
    now = timezone.now()
    params = [_params(page, period, filters) for page, period, filters in requests]
    keys = [snapshot_key(one) for one in params]
    found = {
        row.key: row
        for row in KpiSnapshot.objects.filter(
            key__in=keys, computed_at__gte=now - timedelta(seconds=MAX_AGE_SECONDS)
        ).only("key", "payload", "computed_at", "requested_at")
    }
    touch = [
        key
        for key, row in found.items()
        if row.requested_at < now - timedelta(seconds=TOUCH_SECONDS)
    ]
    if touch:
        KpiSnapshot.objects.filter(key__in=touch).update(requested_at=now)
    results = {key: (pickle.loads(row.payload), row.computed_at) for key, row in found.items()}
    if not compute:
        return [results.get(key) for key in keys]
    computed = []
    for key, page_params, (page, period, filters) in zip(keys, params, requests, strict=True):
        if key in results:  # found, or asked for twice
            continue
        with reads_shared() as reads:  # the request's other snapshots share its reads
            data = _BUILDERS[page](_depended_on(page, period), filters)
        results[key] = (data, min(now, reads.since))
        computed.append(
            KpiSnapshot(
                key=key,
                params=page_params,
                payload=pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL),
                computed_at=results[key][1],
                requested_at=now,
            )
        )
    if computed:
        # One statement for all of them (a look-up again, a savepoint, an UPDATE and an INSERT
        # each, before). A key another request stored meanwhile takes these figures, as fresh
        # as its own.
        KpiSnapshot.objects.bulk_create(
            computed,
            update_conflicts=True,
            unique_fields=["key"],
            update_fields=["params", "payload", "computed_at", "requested_at"],
        )
    return [results[key] for key in keys]


def _store(key: str, params: dict, data: Any, *, computed_at: datetime) -> None:
    """A refreshed snapshot: its figures replaced, when it was last opened kept (that is what
    keeps it hot or lets it go cold)."""
    payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    fields = {"params": params, "payload": payload, "computed_at": computed_at}
    try:
        with transaction.atomic():
            updated = KpiSnapshot.objects.filter(key=key).update(**fields)
            if not updated:  # dropped meanwhile
                KpiSnapshot.objects.create(key=key, requested_at=computed_at, **fields)
    except IntegrityError:
        # Another request stored the same key first: theirs is as fresh as ours.
        pass


def snapshots_refresh(*, budget_seconds: float = 25.0) -> dict:
    """Recompute the hot snapshots about to go stale (most recently opened first), within a
    time budget; drop the cold ones. Idempotent: each key is stored on its own, so a crash
    loses at most the key being computed, and the next run picks up where this one stopped."""
    started = time.monotonic()
    now = timezone.now()
    dropped, _ = KpiSnapshot.objects.filter(
        requested_at__lt=now - timedelta(seconds=COLD_SECONDS)
    ).delete()
    due = KpiSnapshot.objects.filter(
        requested_at__gte=now - timedelta(seconds=HOT_SECONDS),
        computed_at__lt=now - timedelta(seconds=REFRESH_SECONDS),
    ).order_by("-requested_at")
    refreshed = 0
    # The pages repeat each other's headline reads: the round computes each once. Its
    # snapshots are stored as computed at its start, as old as the oldest read they may share.
    with reads_shared() as reads:
        now = min(now, reads.since)
        for key, params in due.values_list("key", "params").iterator():
            if time.monotonic() - started > budget_seconds:
                break
            build = _BUILDERS.get(params.get("page"))
            if build is None:
                continue
            period, filters = _from_params(params)
            _store(key, params, build(period, filters), computed_at=now)
            refreshed += 1
    return {
        "refreshed": refreshed,
        "dropped": dropped,
        "reads_shared": reads.shared,
        "seconds": time.monotonic() - started,
    }
