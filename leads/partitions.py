"""Monthly partitions of the engagement-event table (PostgreSQL; a no-op elsewhere).

The table is ``PARTITION BY RANGE (occurred_at)`` with one partition per UTC month, named
``leads_engagementevent_pYYYY_MM``, and a DEFAULT partition that takes whatever has no month
partition (a backdated event, a far-future one), so no write is ever refused.

``event_partitions_maintain`` (beat, hourly) keeps a partition for each month from
``PARTITIONS_BACK`` months ago (or the retention horizon, if nearer) to ``PARTITIONS_AHEAD``
ahead, and gives any month that has rows in the default partition one of its own, moving those
rows: PostgreSQL refuses to attach a partition whose range has rows in the default one. Each
partition is created as a plain table, filled, then attached (``ATTACH`` takes only a SHARE
UPDATE EXCLUSIVE lock on the parent, so ingestion into other months goes on meanwhile; a
``CREATE TABLE … PARTITION OF`` would lock the whole table). Runs are idempotent and serialised
by an advisory lock: a second run while one holds it does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from leads.services.bulk import constraints_per_statement

EVENTS = "leads_engagementevent"
DEFAULT_PARTITION = f"{EVENTS}_default"
PARTITIONS_BACK = 24  # months behind now kept as partitions even when empty
PARTITIONS_AHEAD = 3  # months ahead created before their events arrive
# pg_advisory_xact_lock key of partition maintenance and retention ("events" in ASCII).
PARTITION_LOCK = 0x6576656E7473


def month_of(at: datetime) -> datetime:
    """The first instant (UTC) of the month ``at`` falls in."""
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def month_add(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{EVENTS}_p{month:%Y_%m}"


def retention_horizon(now: datetime | None = None) -> datetime | None:
    """The first instant whose events retention keeps: the start of the month
    ``EVENT_RETENTION_MONTHS`` before this one (so that many whole months, and this one, are
    kept). None when retention is off (the setting unset or 0)."""
    months = getattr(settings, "EVENT_RETENTION_MONTHS", None)
    if not months:
        return None
    return month_add(month_of(now or timezone.now()), -int(months))


def events_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [EVENTS])
        return cursor.fetchone()[0] == "p"


def month_partitions() -> dict[datetime, str]:
    """Month → partition name, of the month partitions attached now (not the default)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass AND c.relname <> %s
            """,
            [EVENTS, DEFAULT_PARTITION],
        )
        names = [row[0] for row in cursor.fetchall()]
    prefix = f"{EVENTS}_p"
    return {
        datetime.strptime(name.removeprefix(prefix), "%Y_%m").replace(tzinfo=UTC): name
        for name in names
        if name.startswith(prefix)
    }


def months_in_default(since: datetime | None = None) -> list[datetime]:
    """Months that have rows in the default partition (from ``since``)."""
    where, params = ("WHERE occurred_at >= %s", [since]) if since else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') "
            f"FROM {DEFAULT_PARTITION} {where}",
            params,
        )
        return sorted(row[0].replace(tzinfo=UTC) for row in cursor.fetchall())


def partition_lock() -> bool:
    """Take the partitions' advisory lock for the transaction; False when another holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PARTITION_LOCK])
        return cursor.fetchone()[0]


def partition_create(month: datetime) -> int:
    """Create and attach the month's partition, moving its rows out of the default partition
    first. Returns how many rows moved. Inside the caller's transaction."""
    name, lo, hi = partition_name(month), month, month_add(month, 1)
    check = f"{name}_range"
    with connection.cursor() as cursor:
        # New rows of this month would land in the default partition between the move and
        # the attach, and make the attach fail: writes to the default wait (only those).
        cursor.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {name} (LIKE {EVENTS} INCLUDING DEFAULTS)")
        # Proves the range to ATTACH, which then skips scanning the new table.
        cursor.execute(
            f"ALTER TABLE {name} ADD CONSTRAINT {check} "
            "CHECK (occurred_at >= %s AND occurred_at < %s)",
            [lo, hi],
        )
        # A delete on the partition itself fires no trigger of the parent: the moved rows keep
        # their idempotency keys.
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            "WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [lo, hi],
        )
        moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {EVENTS} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [lo, hi],
        )
        cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {check}")
    return moved


@dataclass
class PartitionsMaintained:
    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    skipped: str = ""  # why nothing was done


def event_partitions_maintain(
    *, now: datetime | None = None, ahead: int = PARTITIONS_AHEAD, back: int = PARTITIONS_BACK
) -> PartitionsMaintained:
    """Create the missing month partitions (around now, and for months with rows in the
    default partition that retention keeps), moving rows out of the default partition."""
    result = PartitionsMaintained()
    if not events_partitioned():
        result.skipped = "not partitioned"
        return result
    current = month_of(now or timezone.now())
    horizon = retention_horizon(now)
    with transaction.atomic():
        if not partition_lock():
            result.skipped = "another run holds the lock"
            return result
        existing = month_partitions()
        wanted = {month_add(current, n) for n in range(-back, ahead + 1)}
        wanted.update(months_in_default(since=horizon))
        for month in sorted(wanted):
            if month in existing or (horizon is not None and month < horizon):
                continue
            result.moved_rows += partition_create(month)
            result.created.append(partition_name(month))
    return result


def event_keys_after_bare_load(sender, tables=(), **kwargs) -> None:
    """``tables_loaded_bare`` receiver: a bare load (the seed) wrote events with the triggers
    off, so their idempotency keys are written here, in one statement (a duplicate fails the
    load, as the unique index did), and their content-linked rows in another; the loaded
    months get partitions of their own."""
    if EVENTS not in tables:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO leads_eventkey (source_system, external_id, occurred_at) "
            f"SELECT source_system, external_id, occurred_at FROM {EVENTS} "
            "WHERE external_id <> ''"
        )
        cursor.execute(
            "INSERT INTO leads_contentevent "
            "(event_id, lead_id, content_asset_id, occurred_at, kind) "
            f"SELECT id, lead_id, content_asset_id, occurred_at, kind FROM {EVENTS} "
            "WHERE content_asset_id IS NOT NULL"
        )
    if events_partitioned():
        event_partitions_maintain()


# --- Retention ---------------------------------------------------------------------------------

UTC_DAY = "CAST(FLOOR(EXTRACT(EPOCH FROM occurred_at) / 86400) AS INTEGER)"  # scoring's day


@dataclass
class EventsRetired:
    dropped: list[str] = field(default_factory=list)  # month partitions dropped
    folded_rows: int = 0  # raw events folded (and then dropped or deleted)
    skipped: str = ""


def events_fold(table: str, where: str = "", params: list | None = None) -> int:
    """Fold the events of ``table`` (a partition) matching ``where`` into the archive
    (``leads.models.event_archive``): per lead, kind and UTC day counts, added to those folded
    before (a backdated event can land on a day folded already). Content-linked events need
    nothing: their rows in ``leads_contentevent`` stay, as the drop or delete on a partition
    fires none of the parent's triggers. Returns how many events were folded."""
    params = params or []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO leads_foldedeventday (lead_id, kind, day, events)
            SELECT lead_id, kind, {UTC_DAY}, COUNT(*) FROM {table} {where}
            GROUP BY lead_id, kind, {UTC_DAY}
            ON CONFLICT (lead_id, kind, day)
            DO UPDATE SET events = leads_foldedeventday.events + EXCLUDED.events
            """,
            params,
        )
        cursor.execute(f"SELECT COUNT(*) FROM {table} {where}", params)
        return cursor.fetchone()[0]


def events_retire(*, now: datetime | None = None) -> EventsRetired:
    """Retention (``EVENT_RETENTION_MONTHS``): fold then drop every month partition wholly
    before the horizon, and fold then delete the default partition's rows before it, in one
    transaction, so no reader ever sees an event both raw and folded, or neither. Dropping a
    partition fires no trigger: the events' idempotency keys stay."""
    result = EventsRetired()
    horizon = retention_horizon(now)
    if horizon is None:
        result.skipped = "retention off"
        return result
    if not events_partitioned():
        result.skipped = "not partitioned"
        return result
    with transaction.atomic():
        if not partition_lock():
            result.skipped = "another run holds the lock"
            return result
        # A table with deferred foreign-key checks pending cannot be dropped: run them now.
        constraints_per_statement(connection)
        for month, name in sorted(month_partitions().items()):
            if month_add(month, 1) > horizon:
                continue
            result.folded_rows += events_fold(name)
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE {name}")
            result.dropped.append(name)
        before = ("WHERE occurred_at < %s", [horizon])
        result.folded_rows += events_fold(DEFAULT_PARTITION, *before)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {DEFAULT_PARTITION} {before[0]}", before[1])
    return result
