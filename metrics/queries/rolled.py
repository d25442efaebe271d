"""Reading a KPI from the daily rollups where they hold the answer, from the raw facts where
they do not.

A period is split into the local days the rollup covers (whole days, before today, built under
the rules the read asks for, and not waiting for a refresh) and the rest (today, partial days,
days with pending changes), which the raw query counts. The two parts' counts are added: the
rollup rows hold exactly what the raw query would count on those days.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, reduce
from operator import or_
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import EmptyResultSet
from django.db import connection, connections, router
from django.db.models import DateField, Expression, F, FloatField, Func, Q, QuerySet, Sum
from django.db.models.functions import Cast, TruncMonth, TruncWeek
from django.utils import timezone

from leads.models import Source
from metrics.kpis import KpiFilters, Period
from metrics.queries.common import _grouped, _lead_q, _owner_q
from metrics.queries.shared import shared_read
from metrics.rollup_models import LEAD_GRAINS, OWNER_GRAINS, RollupDirty, RollupState


def rollups_supported() -> bool:
    return connection.vendor == "postgresql"


def local_days_of_hours(hours: Iterable[datetime], zone: ZoneInfo) -> set[date]:
    """The local days an hour (UTC, from its start to the microsecond before the next) touches:
    one, or two in a time zone whose offset is not whole hours."""
    days = set()
    for hour in hours:
        start = hour if hour.tzinfo else hour.replace(tzinfo=UTC)
        days.add(start.astimezone(zone).date())
        days.add((start + timedelta(hours=1, microseconds=-1)).astimezone(zone).date())
    return days


def day_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days gathered into (first, last) runs, in order."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def days_q(field: str, days: Iterable[date], zone: ZoneInfo) -> Q:
    """Instants in ``field`` falling on any of ``days`` (local to ``zone``), as ranges an index
    on the field can serve."""
    ranges = [
        Q(
            **{
                f"{field}__gte": datetime.combine(first, time.min, tzinfo=zone),
                f"{field}__lt": datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone),
            }
        )
        for first, last in day_runs(days)
    ]
    return reduce(or_, ranges) if ranges else Q(pk__in=[])


@dataclass(frozen=True)
class RollupSplit:
    """The days of a period the rollup answers for (in ``zone``); the raw facts answer the
    rest."""

    period: Period
    days: tuple[date, ...]
    zone: ZoneInfo

    @cached_property
    def runs(self) -> list[tuple[date, date]]:
        # A read may ask for the rows and the gaps of a split of ten years of days several
        # times: gather the runs once.
        return day_runs(self.days)

    def rollup_q(self) -> Q:
        return reduce(or_, (Q(day__gte=first, day__lte=last) for first, last in self.runs))

    def raw_q(self, field: str) -> Q:
        """Rows whose ``field`` falls in the period outside the rolled-up days: the gaps
        between them, as ranges (a NOT of the days would read every row of the period)."""
        gaps, start = [], self.period.start
        for first, last in self.runs:
            covered_from = datetime.combine(first, time.min, tzinfo=self.zone)
            if covered_from > start:
                gaps.append((start, covered_from))
            start = datetime.combine(last + timedelta(days=1), time.min, tzinfo=self.zone)
        if start < self.period.end:
            gaps.append((start, self.period.end))
        ranges = [Q(**{f"{field}__gte": low, f"{field}__lt": high}) for low, high in gaps]
        return reduce(or_, ranges) if ranges else Q(pk__in=[])

    def rows(self, model, filters: KpiFilters, columns: Sequence[str]) -> QuerySet:
        """The rollup's rows on these days that pass the filters (named as on a lead), from the
        coarsest grain holding the dimensions the filters and the rollup ``columns`` read
        name: the lead's (source, campaign, tier), the owner's, or both. Reads go through
        ``rolled_grouped`` and ``rolled_value_stats``, which name their columns."""
        model = _grain(model, filters, columns)
        return model.objects.filter(
            self.rollup_q(), _rollup_lead_q(filters), _owner_q(filters, "owner")
        )


@shared_read
def channel_source_ids(channel_groups: tuple[str, ...]) -> tuple[int, ...]:
    """The sources of the channel groups (a few of a dozen rows), once per dashboard request or
    refresh round."""
    sources = Source.objects.filter(channel_group__in=channel_groups).order_by("pk")
    return tuple(sources.values_list("pk", flat=True))


def _rollup_lead_q(filters: KpiFilters) -> Q:
    """The lead filters on a rollup's rows, a channel group as its sources' ids: a list of ids
    lets the planner take a full grain's ``(source, day)`` index, where a join to the source
    table had it read every row of the days (a channel's by-rep SLA, 4 weeks at 1M: 180 →
    27 ms, by hand in psql)."""
    if not filters.channel_groups:
        return _lead_q(filters)
    by_source = Q(source_id__in=channel_source_ids(filters.channel_groups))
    return _lead_q(replace(filters, channel_groups=())) & by_source


_LEAD_DIMENSIONS = {"source", "source_id", "campaign", "campaign_id"}
_OWNER_DIMENSIONS = {"owner", "owner_id"}


def _grain(model, filters: KpiFilters, columns: Sequence[str]):
    """The coarsest grain holding what the read filters and groups by: the lead grain (source,
    campaign, tier) without an owner, the owner grain (owner, tier) without a source or
    campaign, the full grain for both."""
    named = {column.split("__")[0] for column in columns}
    by_owner = bool(
        filters.owner_ids
        or filters.team_manager_id is not None
        or filters.lacks("owner")
        or filters.lacks("team")
        or named & _OWNER_DIMENSIONS
    )
    by_source = bool(
        filters.source_ids
        or filters.channel_groups
        or filters.campaign_ids
        or any(filters.lacks(name) for name in ("source", "campaign"))
        or named & _LEAD_DIMENSIONS
    )
    if by_owner and by_source:
        return model
    return (OWNER_GRAINS if by_owner else LEAD_GRAINS).get(model, model)


def q_fields(q: Q) -> list[str]:
    """The lookups a ``Q`` filters on, e.g. ``["source__origin__in"]``."""
    return [
        path
        for child in q.children
        for path in (q_fields(child) if isinstance(child, Q) else [child[0]])
    ]


def _zone_name(period: Period) -> str:
    zone = period.start.tzinfo
    return getattr(zone, "key", str(zone))


def _whole_days(period: Period, zone: ZoneInfo) -> tuple[date, date]:
    start, end = period.start.astimezone(zone), period.end.astimezone(zone)
    first = start.date() if start.time() == time.min else start.date() + timedelta(days=1)
    return first, end.date() - timedelta(days=1)


@dataclass(frozen=True)
class BuiltRollup:
    """A built rollup's rules, and the hours (UTC) still waiting for its refresh."""

    time_zone: str
    funnel_keys: tuple[str, ...]
    pending: tuple[datetime, ...]


@shared_read
def rollup_state(fact: str) -> BuiltRollup | None:
    """The ``fact`` rollup's rules and pending hours, in one query; None when it is not built.
    Read once per dashboard request or refresh round (``reads_shared``), not once per KPI: a
    snapshot computed in one is stored as computed when it began, so its reads may take the
    state as it stood then (a day marked since is read from the rollup as refreshed, or not
    yet, never from both the rollup and the facts)."""
    state = (
        RollupState.objects.filter(fact=fact, built=True)
        .annotate(
            pending=ArraySubquery(
                RollupDirty.objects.filter(fact=fact).order_by().values("hour").distinct()
            )
        )
        .first()
    )
    if state is None:
        return None
    return BuiltRollup(state.time_zone, tuple(state.funnel_keys), tuple(state.pending))


def rollup_split(
    fact: str,
    period: Period,
    *,
    now: datetime | None = None,
    funnel_keys: Sequence[str] | None = None,
) -> RollupSplit | None:
    """Which days of ``period`` the ``fact`` rollup answers for; None when it answers for none
    (not built, other rules, another time zone, SQLite, days waiting for a refresh, or — with
    ``now``, for reads that depend on it — today)."""
    if not rollups_supported() or _zone_name(period) != settings.DISPLAY_TIME_ZONE:
        return None
    state = rollup_state(fact)
    if state is None or state.time_zone != settings.DISPLAY_TIME_ZONE:
        return None
    if funnel_keys is not None and tuple(funnel_keys) != state.funnel_keys:
        return None
    zone = ZoneInfo(state.time_zone)
    first, last = _whole_days(period, zone)
    # Today's rows, and those of days ahead (due times), are kept current like any other
    # day's. A read ``now``-dependent whose rows do not say when (``now``) takes only the days
    # before ``now``'s.
    if now is not None:
        today = timezone.localtime(timezone.now(), zone).date()
        last = min(last, min(today, now.astimezone(zone).date()) - timedelta(days=1))
    if last < first:
        return None
    stale = local_days_of_hours(state.pending, zone)
    days = tuple(
        day
        for day in (first + timedelta(days=offset) for offset in range((last - first).days + 1))
        if day not in stale
    )
    return RollupSplit(period, days, zone) if days else None


def rollup_column(raw: str) -> str:
    """The rollup's column for a raw fact's group column ("lead__source_id" → "source_id",
    "assignee__username" → "owner__username")."""
    column = raw.removeprefix("lead__")
    return "owner" + column.removeprefix("assignee") if column.startswith("assignee") else column


def sums(names: Iterable[str]) -> dict[str, Sum]:
    return {name: Sum(name) for name in names}


def added(
    measures: Sequence[str], *parts: dict[tuple, dict], group_by: Sequence[str] = ()
) -> dict[tuple, dict]:
    """Grouped rows of several parts, their ``measures`` added per group (None counts 0); the
    group columns are kept from the first part that has the group."""
    total: dict[tuple, dict] = {}
    for part in parts:
        for key, row in part.items():
            into = total.setdefault(key, {name: 0 for name in measures})
            for column, value in zip(group_by, key, strict=False):
                into.setdefault(column, value)
            for name in measures:
                into[name] += row.get(name) or 0
    return total


# The time groupings of a breakdown, on the rollup's local day instead of an instant.
TIME_GROUPS = {
    "group_week": TruncWeek("day", output_field=DateField()),
    "group_month": TruncMonth("day", output_field=DateField()),
}


def rolled_grouped(
    split: RollupSplit,
    model,
    filters: KpiFilters,
    group_by: Sequence[str],
    measures: Sequence[str],
    *,
    where: Q | None = None,
    computed: dict[str, Expression] | None = None,
) -> dict[tuple, dict]:
    """The rollup's part, grouped by the raw columns ``group_by`` (keys as the raw query's;
    a week or month group, ``group_week`` / ``group_month``, is taken from the day): the sums
    of ``measures`` and the ``computed`` aggregates. ``where`` narrows the rows further, in the
    rollup's own columns."""
    columns = [rollup_column(name) for name in group_by]
    # A row counts for these measures only if one of them is non-zero (its other measures may
    # be another instant's): the raw query has no group without a row.
    counted = reduce(or_, (Q(**{f"{name}__gt": 0}) for name in measures))
    rows = split.rows(model, filters, [*columns, *q_fields(where or Q())])
    rows = rows.filter(counted, where or Q())
    times = {name: TIME_GROUPS[name] for name in columns if name in TIME_GROUPS}
    return _grouped(rows.annotate(**times), columns, **sums(measures), **(computed or {}))


@dataclass(frozen=True)
class RolledValues:
    """A value a percentile (and a mean) is taken over: the rollup's array ``column`` on the
    rolled-up days, ``raw`` (NULL where it does not apply) on the raw facts of the rest."""

    column: str
    raw: Expression


def rolled_value_stats(
    split: RollupSplit | None,
    model,
    filters: KpiFilters,
    raw: QuerySet,
    values: dict[str, RolledValues],
    group_by: Sequence[str] = (),
    *,
    fractions: Sequence[float] = (0.5,),
    means: bool = False,
) -> dict[tuple, dict[str, tuple]]:
    """Per group and named value: its percentiles at ``fractions`` (and, with ``means``, its
    mean last), over the values the rollup keeps for the split's days and the ``raw`` rows
    (already narrowed to the split's gaps; all of them without a split), in one query. Exact:
    the same multiset of values a raw read would take, and a mean summed in ``numeric``, whose
    sum does not depend on the order it is added in."""
    groups = [f"value_group_{index}" for index in range(len(group_by))]
    names = [f"value_{index}" for index in range(len(values))]

    def dated(name: str, expression):
        # The rows are read past the ORM's converters: a week or month is cast to a date in SQL
        # (the rollup truncates a date, the raw query a local timestamp).
        return Cast(expression, DateField()) if name in TIME_GROUPS else expression

    from_raw = raw.annotate(
        **{alias: dated(name, F(name)) for alias, name in zip(groups, group_by, strict=True)},
        **{alias: value.raw for alias, value in zip(names, values.values(), strict=True)},
    )
    queries = [from_raw]
    if split is not None:
        rolled_columns = [rollup_column(name) for name in group_by]
        queries.append(
            split.rows(model, filters, rolled_columns).annotate(
                **{
                    alias: dated(column, TIME_GROUPS.get(column, F(column)))
                    for alias, column in zip(groups, rolled_columns, strict=True)
                },
                **{
                    alias: Func(F(value.column), function="unnest", output_field=FloatField())
                    for alias, value in zip(names, values.values(), strict=True)
                },
            )
        )
    parts, params = [], []
    for query in queries:
        try:
            sql, part_params = query.order_by().values(*groups, *names).query.sql_with_params()
        except EmptyResultSet:  # a filter that selects nothing (e.g. no gap between the days)
            continue
        parts.append(f"({sql})")
        params.extend(part_params)
    rows = []
    if parts:
        wanted, wanted_params = [], []
        for name in names:
            for fraction in fractions:
                wanted.append(f"percentile_cont(%s) WITHIN GROUP (ORDER BY {name})")
                wanted_params.append(fraction)
            if means:
                wanted.append(f"CAST(avg(CAST({name} AS numeric)) AS double precision)")
        # A label beside its id (a rep's names) is taken from the group instead of grouped on:
        # sorting 110k response times by the rep's id and three names, ties compared under
        # the collation, took 3 times as long as by the id alone (a quarter by rep at 1M).
        labels = _labels(group_by)
        selected = [
            f"(array_agg({alias}))[1]" if index in labels else alias
            for index, alias in enumerate(groups)
        ]
        keys = [alias for index, alias in enumerate(groups) if index not in labels]
        grouped = f" GROUP BY {', '.join(keys)}" if keys else ""
        sql = (
            f"SELECT {', '.join([*selected, *wanted])} FROM ({' UNION ALL '.join(parts)}) "
            f"AS rolled_values{grouped}"
        )
        # Raw SQL goes where the ORM's reads would (the replica in a stale-reads scope).
        with connections[router.db_for_read(model)].cursor() as cursor:
            cursor.execute(sql, [*wanted_params, *params])
            rows = cursor.fetchall()
    width, each = len(groups), len(fractions) + means
    found = {
        tuple(row[:width]): {
            name: tuple(row[width + index * each : width + (index + 1) * each])
            for index, name in enumerate(values)
        }
        for row in rows
    }
    if not group_by:
        found.setdefault((), {name: (None,) * each for name in values})
    return found


def _labels(group_by: Sequence[str]) -> set[int]:
    """The positions of the group columns that label another one, a name beside its id
    (``assignee__first_name`` beside ``assignee_id``): one value per id."""
    named = set(group_by)
    return {
        index
        for index, name in enumerate(group_by)
        if "__" in name and f"{name.rsplit('__', 1)[0]}_id" in named
    }


def rolled_percentiles(
    split: RollupSplit,
    model,
    filters: KpiFilters,
    values_column: str,
    raw: QuerySet,
    value: Expression,
    fractions: Sequence[float],
    group_by: Sequence[str] = (),
) -> dict[tuple, tuple[float | None, ...]]:
    """Percentiles of one value per group (``rolled_value_stats``), keyed as ``_percentiles``."""
    found = rolled_value_stats(
        split,
        model,
        filters,
        raw,
        {"value": RolledValues(values_column, value)},
        group_by,
        fractions=fractions,
    )
    return {key: stats["value"] for key, stats in found.items()}
