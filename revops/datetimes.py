"""Instants that arrive from outside (API bodies, API filters, CSV imports): one parser, one set
of limits, one wording of the refusal. No ORM.

Python reads UTC offsets up to ±23:59 but PostgreSQL's ``timestamptz`` refuses anything from
±16:00 on ("time zone displacement out of range"), so an offset such as ``+16:00`` passed
through to the database turned a client's typo into a 500. Every instant is therefore checked
here and converted to UTC before a query or a row sees it: offsets beyond ±15:59 are refused
(no real time zone uses more than +14:00 or less than -12:00), as are instants that fall outside
the calendar once in UTC (year 1 with a negative offset, 9999-12-31 with a positive one).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

# PostgreSQL accepts offsets strictly below 16 hours (its MAX_TZDISP_HOUR is 15).
OFFSET_LIMIT = timedelta(hours=16)
ISO_EXAMPLE = "2026-03-02T15:00:00Z"
ISO_HINT = f"use ISO 8601, e.g. {ISO_EXAMPLE} or 2026-03-02T10:00:00-05:00"


class InstantError(ValueError):
    """An instant we cannot store. ``message`` is a sentence quoting the value (for an API
    field or filter); ``detail`` the same without its subject (``has the UTC offset +16:00;
    …``), for a CSV cell whose row error already names the value; ``code`` the API's error
    code."""

    def __init__(self, message: str, *, code: str = "invalid", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail or message


def format_offset(offset: timedelta) -> str:
    """``+16:00``, ``-23:59``, ``+05:30:15`` (seconds only when there are some)."""
    sign = "-" if offset < timedelta(0) else "+"
    seconds = int(abs(offset).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return f"{text}:{seconds:02d}" if seconds else text


def to_utc(value: datetime, *, zone: tzinfo = UTC, text: str | None = None) -> datetime:
    """``value`` as an aware instant in UTC, ready for the database. A naive value is read in
    ``zone``. Raises InstantError for an offset PostgreSQL cannot store or an instant outside
    the calendar; ``text`` is the value as the client wrote it, for the message."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    shown = text if text is not None else value.isoformat()
    offset = value.utcoffset()
    if offset is not None and abs(offset) >= OFFSET_LIMIT:
        detail = (
            f"has the UTC offset {format_offset(offset)}, out of range: offsets run from "
            "-15:59 to +15:59 (real time zones use -12:00 to +14:00)"
        )
        raise InstantError(f"{shown} {detail}.", code="offset_out_of_range", detail=detail)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        detail = "is outside the calendar once converted to UTC"
        raise InstantError(f"{shown} {detail}.", code="out_of_range", detail=detail) from None


def parse_instant(text: str, *, zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 date and time (a date alone is its midnight) as an aware instant in UTC; a
    value without an offset is read in ``zone``. Raises InstantError with a message that
    quotes the value and says what is expected."""
    if not isinstance(text, str):
        raise InstantError(f"Not a date and time: {text!r}; {ISO_HINT}.")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        reason = str(exc)
        detail = "" if reason.startswith("Invalid isoformat") else f" ({reason})"
        raise InstantError(f"Not a valid date and time: {text!r}{detail}; {ISO_HINT}.") from None
    return to_utc(value, zone=zone, text=text)


def local_day_start(day: date, *, zone: tzinfo, at: time = time(0)) -> datetime:
    """The instant a local date begins in ``zone`` (or ``at`` on that date), in UTC: how a
    date without a time is read. A wall time a daylight-saving change skips (02:30 on the
    spring-forward day; 00:00 where the clocks jump at midnight) is read with the offset in
    force before the change, i.e. the first instant of that day."""
    return to_utc(datetime.combine(day, at), zone=zone, text=day.isoformat())


def parse_date_or_instant(
    text: str, *, zone: tzinfo = UTC, date_zone: tzinfo | None = None, at: time = time(0)
) -> datetime:
    """Like ``parse_instant``, but a date alone (``2017-03-31``) is a local date: ``at``
    (midnight) on that day in ``date_zone`` (default ``zone``), not midnight UTC."""
    stripped = text.strip() if isinstance(text, str) else text
    if isinstance(stripped, str) and len(stripped) == 10:
        try:
            day = date.fromisoformat(stripped)
        except ValueError:
            pass
        else:
            return local_day_start(day, zone=date_zone or zone, at=at)
    return parse_instant(text, zone=zone)
