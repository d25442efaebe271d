"""The SLA clock: business hours on a calendar, as plain functions (no ORM, no Django).

The rules, in plain words:

* **A calendar** has a time zone (an IANA name such as ``America/New_York``), working hours per
  weekday given as one or more blocks of local wall-clock time (``09:00–12:00`` and
  ``13:00–17:00`` for a lunch break), and holidays: local dates on which the clock does not run.
  A calendar must have at least one block, or its clock would never run.
* **The clock runs only inside a block.** A block includes its opening instant and excludes its
  closing instant: at 17:00 sharp the office is closed, at 09:00 sharp it is open.
* **A due time** is the start plus N business hours. Time outside the blocks (nights, weekends,
  holidays, lunch breaks) does not count. A start outside working time starts the clock at the
  next opening, so a lead assigned at 23:59 on Friday is due N hours after Monday's opening.
  With N = 0 the due time is the start itself if the clock is running, else the next opening.
* **A due time that falls exactly at closing time is that closing instant**, not the next
  morning's opening: 8 business hours from Monday 09:00 on a 09:00–17:00 calendar is Monday
  17:00. Every due time is therefore either inside a block or exactly at a block's close.
* **Blocks are read in the calendar's local time, day by day**, whatever the time zone of the
  input or of the server. Business time is real elapsed time inside the blocks, so a 09:00–17:00
  day is 8 hours even on the days clocks change (the change happens at night, outside the
  block). A block that itself spans a clock change is shorter (spring forward) or longer (fall
  back) than its wall-clock length by the size of the change, because that is how long it
  really lasts. A block cannot run past midnight: the latest close is ``23:59:59.999999``.
* **Clock-change edge cases use ``fold=0``** (the ``zoneinfo`` default): a block boundary at a
  local time that does not exist (inside the spring-forward gap) is read with the offset in force
  before the change, so ``02:30`` on the New York spring-forward day means ``03:30`` EDT; a
  boundary at a local time that happens twice (in the repeated fall-back hour) means its first
  occurrence. If that makes two blocks overlap, the overlap counts once.
* **Elapsed business time** between two instants counts only the time inside blocks, and is the
  exact inverse of the due time: measuring from the start to the due time of N hours gives back
  N hours (from the next opening when the start is outside working time).
* **Due times are instants in UTC** (aware ``datetime`` objects); inputs must be aware too.
* Long SLAs skip whole weeks arithmetically between holidays and clock changes. A search that
  finds no working time in 3,660 consecutive days (ten years of holidays) stops with a
  ``ValueError`` instead of looping.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType

__all__ = [
    "MAX_DAYS_WITHOUT_WORKING_TIME",
    "BusinessCalendarSpec",
    "add_business_hours",
    "business_seconds_between",
    "is_working_time",
    "next_opening",
]

MAX_DAYS_WITHOUT_WORKING_TIME = 3660

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_ZERO = timedelta(0)
_TICK = timedelta(microseconds=1)
_MICROSECONDS_PER_HOUR = 3_600_000_000

Block = tuple[time, time]


@dataclass(frozen=True, slots=True)
class BusinessCalendarSpec:
    """A business calendar as plain data: time zone, weekly blocks and holidays.

    ``working_hours`` maps a weekday (0 = Monday … 6 = Sunday) to its blocks of local wall-clock
    time, ``(opens, closes)``; a weekday that is missing or maps to ``()`` has no working time.
    Blocks are sorted on construction; they must open before they close and must not overlap
    (touching blocks, 09:00–12:00 and 12:00–17:00, are fine). ``holidays`` are local dates.
    Invalid input raises ``ValueError`` with a message an ops admin can act on.
    """

    time_zone: str
    working_hours: Mapping[int, tuple[Block, ...]]
    holidays: frozenset[date] = frozenset()
    # Derived on construction, for the hot loops.
    _zone: zoneinfo.ZoneInfo = field(init=False, repr=False, compare=False)
    _holiday_ordinals: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _day_length: tuple[timedelta, ...] = field(init=False, repr=False, compare=False)
    _week_length: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = _zone_or_error(self.time_zone)
        working_hours = _validated_working_hours(self.working_hours)
        holidays = _validated_holidays(self.holidays)
        day_length = tuple(
            sum((_wall_length(block) for block in working_hours.get(day, ())), _ZERO)
            for day in range(7)
        )
        set_ = object.__setattr__
        set_(self, "working_hours", MappingProxyType(working_hours))
        set_(self, "holidays", holidays)
        set_(self, "_zone", zone)
        set_(self, "_holiday_ordinals", tuple(sorted(day.toordinal() for day in holidays)))
        set_(self, "_day_length", day_length)
        set_(self, "_week_length", sum(day_length, _ZERO))

    def __hash__(self) -> int:
        return hash((self.time_zone, tuple(sorted(self.working_hours.items())), self.holidays))

    def __reduce__(self):
        # Pickle (cache, task payload) and deepcopy rebuild from the three fields, re-validated.
        return (type(self), (self.time_zone, dict(self.working_hours), self.holidays))

    @classmethod
    def from_blocks(
        cls,
        *,
        time_zone: str,
        blocks: Iterable[tuple[int, time, time]],
        holidays: Iterable[date] = (),
    ) -> BusinessCalendarSpec:
        """Build a spec from flat ``(weekday, opens, closes)`` rows, e.g. database rows."""
        by_day: dict[int, list[Block]] = {}
        for weekday, opens, closes in blocks:
            by_day.setdefault(weekday, []).append((opens, closes))
        return cls(
            time_zone=time_zone,
            working_hours={day: tuple(day_blocks) for day, day_blocks in by_day.items()},
            holidays=frozenset(holidays),
        )

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return self._zone


# --- Validation --------------------------------------------------------------------------------


def _zone_or_error(name: str) -> zoneinfo.ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(f"Unknown time zone {name!r} (use an IANA name such as Europe/Paris).")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"Unknown time zone {name!r} (use an IANA name such as Europe/Paris)."
        ) from exc


def _validated_working_hours(working_hours: Mapping[int, Iterable[Block]]) -> dict:
    result: dict[int, tuple[Block, ...]] = {}
    for weekday, raw_blocks in working_hours.items():
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValueError(f"Unknown weekday {weekday!r}: use 0 (Monday) to 6 (Sunday).")
        name = WEEKDAY_NAMES[weekday]
        blocks = []
        for block in raw_blocks:
            opens, closes = block
            for value in (opens, closes):
                if not isinstance(value, time) or value.tzinfo is not None:
                    raise ValueError(
                        f"{name}: block boundaries must be local times without a time zone, "
                        f"got {value!r}."
                    )
            if opens >= closes:
                raise ValueError(
                    f"{name}: a block must open before it closes ({_hhmm(opens)}–{_hhmm(closes)})."
                )
            blocks.append((opens, closes))
        blocks.sort()
        for (open_a, close_a), (open_b, close_b) in itertools.pairwise(blocks):
            if open_b < close_a:
                raise ValueError(
                    f"{name}: blocks {_hhmm(open_a)}–{_hhmm(close_a)} and "
                    f"{_hhmm(open_b)}–{_hhmm(close_b)} overlap."
                )
        if blocks:
            result[weekday] = tuple(blocks)
    if not result:
        raise ValueError("A calendar with no working hours: its clock would never run.")
    return dict(sorted(result.items()))


def _validated_holidays(holidays: Iterable[date]) -> frozenset[date]:
    result = frozenset(holidays)
    for day in result:
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValueError(f"Holidays must be dates, got {day!r}.")
    return result


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")


def _wall_length(block: Block) -> timedelta:
    opens, closes = block
    return datetime.combine(date.min, closes) - datetime.combine(date.min, opens)


# --- Public functions --------------------------------------------------------------------------


def add_business_hours(
    calendar: BusinessCalendarSpec, start: datetime, hours: Decimal | float
) -> datetime:
    """The due time (aware, UTC) of ``hours`` business hours counted from ``start``.

    ``start`` is any aware instant; outside working time the clock starts at the next opening.
    A due time at the exact end of a block is that closing instant. ``hours`` may be a
    ``Decimal`` or a float and is honoured to the microsecond.
    """
    return _consume(calendar, _utc(start, "start"), _duration(hours))


def business_seconds_between(
    calendar: BusinessCalendarSpec, start: datetime, end: datetime
) -> float:
    """Business seconds elapsed from ``start`` to ``end`` (0 when ``end`` is not after it)."""
    start_utc, end_utc = _utc(start, "start"), _utc(end, "end")
    if end_utc <= start_utc:
        return 0.0
    return _measure(calendar, start_utc, end_utc).total_seconds()


def next_opening(calendar: BusinessCalendarSpec, at: datetime) -> datetime:
    """When the clock runs next (aware, UTC): ``at`` itself inside a block, else the next opening.

    A closing instant is outside working time, so at 17:00 sharp this is the next day's opening.
    """
    return _consume(calendar, _utc(at, "at"), _ZERO)


def is_working_time(calendar: BusinessCalendarSpec, at: datetime) -> bool:
    """Whether the clock is running at ``at`` (opening instant included, closing excluded)."""
    at_utc = _utc(at, "at")
    day = _local_date(calendar, at_utc)
    return any(
        opens <= at_utc < closes
        for candidate in (day - _DAY, day, day + _DAY)
        for opens, closes in _day_intervals(calendar, candidate)
    )


def clock_stops_at(calendar: BusinessCalendarSpec, at: datetime) -> datetime | None:
    """When the running clock next pauses (the end of the block ``at`` falls in, aware UTC), or
    None when the clock is not running at ``at``. A live countdown ticks until then."""
    at_utc = _utc(at, "at")
    day = _local_date(calendar, at_utc)
    for candidate in (day - _DAY, day, day + _DAY):
        for opens, closes in _day_intervals(calendar, candidate):
            if opens <= at_utc < closes:
                return closes
    return None


@dataclass(frozen=True)
class Countdown:
    """Business time left until a due time (negative once overdue), for a live display: the
    figure holds while ``running`` is False and ticks down in real time while it is True, until
    ``changes_at`` (the next closing or opening), when it must be recomputed."""

    seconds_left: float
    running: bool
    changes_at: datetime | None
    # The due time and the instant the countdown was taken, for the calendar time beside it.
    due: datetime | None = None
    at: datetime | None = None

    @property
    def overdue(self) -> bool:
        return self.seconds_left < 0


def countdown(calendar: BusinessCalendarSpec, due: datetime, now: datetime) -> Countdown:
    if due >= now:
        seconds_left = business_seconds_between(calendar, now, due)
    else:
        seconds_left = -business_seconds_between(calendar, due, now)
    stops_at = clock_stops_at(calendar, now)
    if stops_at is not None:
        return Countdown(seconds_left, True, stops_at, due, now)
    return Countdown(seconds_left, False, next_opening(calendar, now), due, now)


# --- The walkers -------------------------------------------------------------------------------
#
# Both walk local days from the day before the start's local date (a cheap safety margin), and
# share the same fast path: a day is *regular* when it is not a holiday and its UTC offset is the
# same at its local midnight and at the next one (no clock change during it); its business time is
# then exactly the wall-clock length of its blocks, with no zone conversion. A run of regular days
# is skipped arithmetically, whole weeks at a time, up to the next holiday or clock change. Other
# days are converted block by block to UTC. ``aligned`` means the walk has not passed the current
# day's local midnight, which holds once the first (partial) days are done, so a day can be taken
# whole. (Comparing offsets at midnights assumes a zone changes its clock at most once a day,
# which holds for every zone in the tz database from 1990 to 2040.)


def _consume(calendar: BusinessCalendarSpec, cursor: datetime, remaining: timedelta) -> datetime:
    day = _local_date(calendar, cursor) - _DAY
    aligned = False
    regular_until = day  # the days from `day` up to (excluding) this one are regular
    idle_days = 0
    week_length = calendar._week_length
    while True:
        if aligned:
            if day >= regular_until:
                regular_until = _regular_until(calendar, day)
            if day < regular_until:
                # Keep `remaining` > 0 after the skip so the due time is found in a real block.
                weeks = min((regular_until - day).days // 7, (remaining - _TICK) // week_length)
                if weeks > 0:
                    remaining -= week_length * weeks
                    day += _WEEK * weeks
                    idle_days = 0
                    continue
                day_length = calendar._day_length[day.weekday()]
                if remaining > day_length:
                    remaining -= day_length
                    idle_days = 0 if day_length else idle_days + 1
                    _check_idle(idle_days, day)
                    day += _DAY
                    continue
        intervals = _day_intervals(calendar, day)
        for opens, closes in intervals:
            if closes <= cursor:
                continue
            begin = max(opens, cursor)
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
            cursor = closes
        idle_days = 0 if intervals else idle_days + 1
        _check_idle(idle_days, day)
        day += _DAY
        aligned = cursor <= _local_midnight_utc(calendar, day)


def _measure(calendar: BusinessCalendarSpec, cursor: datetime, end: datetime) -> timedelta:
    day = _local_date(calendar, cursor) - _DAY
    last_day = _local_date(calendar, end)
    aligned = False
    regular_until = day
    total = _ZERO
    while cursor < end and day <= last_day + _DAY:
        if aligned:
            if day >= regular_until:
                regular_until = _regular_until(calendar, day)
            # The blocks of a regular day all end before any instant of a later local date.
            if day < regular_until and day < last_day:
                weeks = min((regular_until - day).days // 7, (last_day - day).days // 7)
                if weeks > 0:
                    total += calendar._week_length * weeks
                    day += _WEEK * weeks
                else:
                    total += calendar._day_length[day.weekday()]
                    day += _DAY
                continue
        for opens, closes in _day_intervals(calendar, day):
            if closes <= cursor:
                continue
            begin = max(opens, cursor)
            if begin >= end:
                return total
            total += min(closes, end) - begin
            cursor = closes
        day += _DAY
        aligned = cursor <= _local_midnight_utc(calendar, day)
    return total


def _check_idle(idle_days: int, day: date) -> None:
    if idle_days > MAX_DAYS_WITHOUT_WORKING_TIME:
        raise ValueError(
            f"No working time in {MAX_DAYS_WITHOUT_WORKING_TIME} consecutive days up to "
            f"{day.isoformat()}: check the calendar's holidays."
        )


# --- Days --------------------------------------------------------------------------------------


def _day_intervals(calendar: BusinessCalendarSpec, day: date) -> list[tuple[datetime, datetime]]:
    """The UTC intervals of one local day's blocks: sorted, non-overlapping, non-empty."""
    if day.weekday() not in calendar.working_hours:
        return []
    ordinals = calendar._holiday_ordinals
    if ordinals and _has_ordinal(ordinals, day.toordinal()):
        return []
    zone = calendar._zone
    intervals: list[tuple[datetime, datetime]] = []
    floor: datetime | None = None
    for opens, closes in calendar.working_hours[day.weekday()]:
        # combine(..., tzinfo=zone) leaves fold=0: the first reading of an ambiguous time, the
        # pre-change offset for a time that does not exist.
        begin = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
        finish = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
        if floor is not None and begin < floor:
            begin = floor
        if finish <= begin:
            continue
        intervals.append((begin, finish))
        floor = finish
    return intervals


def _regular_until(calendar: BusinessCalendarSpec, day: date) -> date:
    """The first holiday or clock-change day on or after ``day`` (looking up to two years on)."""
    ordinal = day.toordinal()
    year = day.year
    stop = date(year + 2, 1, 1).toordinal() if year + 2 <= MAXYEAR else date.max.toordinal()
    holidays = calendar._holiday_ordinals
    index = bisect.bisect_left(holidays, ordinal)
    if index < len(holidays):
        stop = min(stop, holidays[index])
    for candidate_year in range(year, min(year + 2, MAXYEAR + 1)):
        changes = _clock_change_ordinals(calendar._zone, candidate_year)
        index = bisect.bisect_left(changes, ordinal)
        if index < len(changes):
            stop = min(stop, changes[index])
            break
    return date.fromordinal(stop)


@functools.lru_cache(maxsize=2048)
def _clock_change_ordinals(zone: zoneinfo.ZoneInfo, year: int) -> tuple[int, ...]:
    """The days of ``year`` whose UTC offset differs between their midnight and the next one."""
    day = datetime(year, 1, 1)
    last = datetime(year, 12, 31)
    offset = zone.utcoffset(day)  # a naive datetime is read as local wall time, fold=0
    changes = []
    while day <= last and day.date() < date.max:
        following = day + _DAY
        next_offset = zone.utcoffset(following)
        if next_offset != offset:
            changes.append(day.toordinal())
        day, offset = following, next_offset
    return tuple(changes)


def _has_ordinal(ordinals: tuple[int, ...], ordinal: int) -> bool:
    index = bisect.bisect_left(ordinals, ordinal)
    return index < len(ordinals) and ordinals[index] == ordinal


def _local_date(calendar: BusinessCalendarSpec, instant: datetime) -> date:
    return instant.astimezone(calendar._zone).date()


def _local_midnight_utc(calendar: BusinessCalendarSpec, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=calendar._zone).astimezone(UTC)


# --- Inputs ------------------------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {value!r}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got the naive {value.isoformat()}).")
    return value.astimezone(UTC)


def _duration(hours: Decimal | float) -> timedelta:
    if isinstance(hours, bool) or not isinstance(hours, int | float | Decimal):
        raise TypeError(f"hours must be a number, got {hours!r}.")
    value = hours if isinstance(hours, Decimal) else Decimal(hours)
    if not value.is_finite() or value < 0:
        raise ValueError(f"hours must be a finite number of hours, zero or more, got {hours!r}.")
    microseconds = (value * _MICROSECONDS_PER_HOUR).to_integral_value(rounding=ROUND_HALF_EVEN)
    return timedelta(microseconds=int(microseconds))
