"""Events retention, as scoring sees it: what the raw events of dropped months left behind.

Retention (``EVENT_RETENTION_MONTHS``, ``leads.partitions.events_retire``) drops whole months
of raw events only after folding them into ``leads.FoldedEventDay``: per lead, kind and UTC day
counts. That is all scoring reads of an event (a daily cap per kind, then decay by whole days
from the event's UTC day), so a re-read of sums — a new half-life or caps, a lead scored for
the first time — gives exactly the scores it gave before the drop, when it reads raw day
counts and folded ones together, as every reader here does.

A day can hold both: a backdated event that arrives after its month was folded lands raw, and
the next retention run folds it onto the same day. So the two are summed per (lead, kind, day)
before the cap applies, never capped separately.
"""

from __future__ import annotations

from leads.models import FoldedEventDay

EVENT_TABLE = "leads_engagementevent"
FOLDED_TABLE = FoldedEventDay._meta.db_table


def anything_folded() -> bool:
    """Whether retention has folded any event: while not, readers read raw events alone."""
    return FoldedEventDay.objects.exists()


def event_day_counts_sql(where: str, day_sql, *, folded: bool) -> tuple[str, int]:
    """A subquery of (lead_id, kind, day, n): events per lead, kind and UTC day, raw and folded
    together, for events matching ``where`` (SQL over alias ``e``: ``e.lead_id`` only, which
    both tables have). ``day_sql(column)`` is the UTC day number of an instant column. Returns
    the SQL and how many times the caller passes ``where``'s parameters (1, or 2 with the
    folded rows)."""
    raw = (
        f"SELECT e.lead_id, e.kind, {day_sql('e.occurred_at')} AS day, COUNT(*) AS n "
        f"FROM {EVENT_TABLE} e WHERE {where} "
        f"GROUP BY e.lead_id, e.kind, {day_sql('e.occurred_at')}"
    )
    if not folded:
        return raw, 1
    return (
        f"SELECT lead_id, kind, day, CAST(SUM(n) AS BIGINT) AS n FROM ({raw} UNION ALL "
        f"SELECT e.lead_id, e.kind, e.day, e.events FROM {FOLDED_TABLE} e WHERE {where}) u "
        "GROUP BY lead_id, kind, day"
    ), 2


def folded_event_days(lead_id: int) -> list[tuple[str, int]]:
    """(kind, UTC day) once per folded event of a lead, as ``lead_event_days`` lists raw ones."""
    return [
        (kind, day)
        for kind, day, events in FoldedEventDay.objects.filter(lead_id=lead_id).values_list(
            "kind", "day", "events"
        )
        for _ in range(events)
    ]
