"""Keyset (seek) pagination for lists that reach millions of rows.

``OFFSET 99950`` reads and throws away every row before the page, so page 2,000 of the lead list
cost seconds; a page that starts *after the last row shown* (``created_at, id`` below the
cursor's) reads 51 rows through the ``created_at`` index at any depth. Pages are reached by
"Older" / "Newer" links carrying an opaque cursor; the count is bounded (``10,000+``) so the
first page never counts a million rows either.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

COUNT_CAP = 10_000
INVALID_CURSOR = "That page link is not valid (edited or cut short): showing the newest leads."


class BadCursor(ValueError):
    """A cursor this module did not write (edited or truncated by hand)."""


def cursor_encode(moment: datetime, pk: int) -> str:
    raw = f"{moment.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment_text, pk_text = raw.rsplit("|", 1)
        moment, pk = datetime.fromisoformat(moment_text), int(pk_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise BadCursor(INVALID_CURSOR) from error
    if moment.tzinfo is None or pk < 1:
        raise BadCursor(INVALID_CURSOR)
    return moment, pk


@dataclass(frozen=True)
class KeysetPage:
    object_list: list
    next_cursor: str  # older rows ("" when this is the last page)
    previous_cursor: str  # newer rows ("" on the first page)
    total: int  # rows matching, counted up to COUNT_CAP + 1
    is_first: bool

    @property
    def has_next(self) -> bool:
        return bool(self.next_cursor)

    @property
    def has_previous(self) -> bool:
        return bool(self.previous_cursor)

    @property
    def total_is_capped(self) -> bool:
        return self.total > COUNT_CAP

    @property
    def count_cap(self) -> int:
        return COUNT_CAP


def newest_first_page(
    rows: QuerySet,
    *,
    field: str,
    size: int,
    after: str = "",
    before: str = "",
) -> KeysetPage:
    """A page of ``rows`` ordered by ``field`` then pk, newest first: the ``size`` rows older
    than ``after``, or newer than ``before`` (the newest ones without either). Raises BadCursor
    for a cursor that does not decode."""
    rows = rows.order_by()
    if before:
        moment, pk = cursor_decode(before)
        # Newer rows: walk up from the cursor, then show them newest first.
        chunk = list(
            rows.filter(**{f"{field}__gte": moment})
            .exclude(**{field: moment, "pk__lte": pk})
            .order_by(field, "pk")[: size + 1]
        )
        more_newer = len(chunk) > size
        items = list(reversed(chunk[:size]))
        page_has_older = True
        is_first = not more_newer
    else:
        query = rows
        if after:
            moment, pk = cursor_decode(after)
            query = query.filter(**{f"{field}__lte": moment}).exclude(
                **{field: moment, "pk__gte": pk}
            )
        chunk = list(query.order_by(f"-{field}", "-pk")[: size + 1])
        items = chunk[:size]
        page_has_older = len(chunk) > size
        is_first = not after
        more_newer = bool(after)
    if not items and before:  # nothing newer than the cursor: the newest page is what is asked
        return newest_first_page(rows, field=field, size=size)
    if not items:
        return KeysetPage([], "", "", _capped_count(rows), is_first=True)
    first, last = items[0], items[-1]
    return KeysetPage(
        object_list=items,
        next_cursor=cursor_encode(getattr(last, field), last.pk) if page_has_older else "",
        previous_cursor=cursor_encode(getattr(first, field), first.pk) if more_newer else "",
        total=_capped_count(rows),
        is_first=is_first,
    )


def _capped_count(rows: QuerySet) -> int:
    # COUNT(*) over at most COUNT_CAP + 1 rows: "10,000+" instead of scanning a million.
    return rows.order_by().values("pk")[: COUNT_CAP + 1].count()


def page_of(request, rows, per_page: int, *, drop: tuple[str, ...] = ()) -> tuple[Page, str]:
    """One numbered page of ``rows`` (the request's ``page``; past the end, the last page) and
    the request's other parameters as a query string for the pager's links (without ``page``
    and the ``drop`` ones)."""
    page = Paginator(rows, per_page).get_page(request.GET.get("page"))
    query = request.GET.copy()
    for name in ("page", *drop):
        query.pop(name, None)
    return page, query.urlencode()
