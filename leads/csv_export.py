"""Streaming CSV downloads: constant memory for any number of rows, safe to open in a
spreadsheet (cells that would start a formula are quoted as text), numbers rounded as the
screen shows them, and a file name that says what is in it (period and filters)."""

import csv
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from functools import wraps

from django.http import StreamingHttpResponse
from django.utils.text import slugify

from revops.db_router import reads_may_be_stale

# A float that no formatter rounded still never shows more than this many decimals.
FLOAT_DECIMALS = 4
MAX_FILENAME_STEM = 120


def percent_cell(rate) -> float | str:
    """0.21212… → 21.2 (a header says "%"), as the pages show it; None → empty."""
    return "" if rate is None else round(float(rate) * 100, 1)


def money_cell(amount) -> Decimal | str:
    """Whole currency units, as the pages show them ($1,234,568)."""
    if amount is None or amount == "":
        return ""
    return Decimal(str(amount)).quantize(Decimal("1"), rounding=ROUND_HALF_UP)


def decimal_cell(value, digits: int = 1) -> float | str:
    """Days (3.4) or hours (5.25 → 5.3) with the precision the pages use."""
    return "" if value is None else round(float(value), digits)


def export_filename(name: str, *parts: object) -> str:
    """``handoffs_2026-02-01_2026-02-28_webinars-tier-a.csv``: the export, its period and its
    filters in words (empty parts left out), safe in a Content-Disposition header."""
    words = [slugify(str(part)) for part in (name, *parts) if part not in (None, "")]
    stem = "_".join(word for word in words if word)[:MAX_FILENAME_STEM].rstrip("-_")
    return f"{stem or 'export'}.csv"


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def spreadsheet_safe(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        value = round(value, FLOAT_DECIMALS)
    text = str(value)
    if text.startswith(_FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence]
) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # a BOM, so spreadsheet apps read UTF-8 names correctly
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([spreadsheet_safe(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_reads_may_be_stale(view):
    """A page whose ``?format=csv`` download may read the replica (``reads_may_be_stale``): an
    export is a copy of rows that is out of date as soon as it is saved, so a few seconds more
    change nothing, and a big one is a long read the primary is spared. The page itself reads
    where it did (the primary)."""
    export = reads_may_be_stale(view)

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.GET.get("format") == "csv":
            return export(request, *args, **kwargs)
        return view(request, *args, **kwargs)

    return wrapped
