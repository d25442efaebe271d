"""Reading a pasted list of target accounts: pure text in, lines or problems out (no ORM).

One account a line: its domain or its name, then optionally the tier and a note, separated by
commas (quote a name that holds a comma: ``"Acme, Inc.", 1, Ana runs the play``). Blank lines
and lines starting with ``#`` are skipped. A value with a dot and no space is a domain
(``acme.com``, ``https://www.acme.com/`` alike); anything else is an account name.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from leads.models.facts import normalize_domain

MAX_LINES = 2000
MAX_NOTE = 200
_TIER = re.compile(r"^(?:tier\s*|t)?(?P<tier>[123])$", re.IGNORECASE)


@dataclass(frozen=True)
class ImportLine:
    number: int  # 1-based, as the admin sees the text
    key: str  # the normalized domain, or the name as typed (spaces collapsed)
    is_domain: bool
    tier: str  # "1", "2", "3" or ""
    note: str

    @property
    def shown(self) -> str:
        return f"the domain {self.key!r}" if self.is_domain else f"the name {self.key!r}"


def looks_like_domain(value: str) -> bool:
    return "." in value and " " not in value.strip()


def parse_lines(text: str) -> tuple[list[ImportLine], list[str]]:
    """The accounts a pasted text names, and every problem found (each naming its line)."""
    lines: list[ImportLine] = []
    problems: list[str] = []
    raw_lines = (text or "").splitlines()
    if len(raw_lines) > MAX_LINES:
        return [], [f"At most {MAX_LINES} lines at a time ({len(raw_lines)} given)."]
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in next(csv.reader([raw], skipinitialspace=True))]
        cells += [""] * (3 - len(cells))
        if len(cells) > 3:
            problems.append(
                f"Line {number}: too many commas: write the account, its tier and a note "
                '(quote a name holding a comma: "Acme, Inc.").'
            )
            continue
        value, tier_text, note = cells
        value = " ".join(value.split())
        if not value:
            problems.append(f"Line {number}: no account: start the line with a domain or a name.")
            continue
        tier = ""
        if tier_text:
            match = _TIER.match(tier_text)
            if match is None:
                problems.append(
                    f"Line {number}: unknown tier {tier_text!r}: use 1, 2 or 3 (or leave it out)."
                )
                continue
            tier = match["tier"]
        if len(note) > MAX_NOTE:
            problems.append(f"Line {number}: the note is longer than {MAX_NOTE} characters.")
            continue
        is_domain = looks_like_domain(value)
        key = normalize_domain(value) if is_domain else value
        if not key:
            problems.append(f"Line {number}: {value!r} is not a domain.")
            continue
        lines.append(ImportLine(number, key, is_domain, tier, note))
    if not lines and not problems:
        problems.append("Nothing to import: paste one account (domain or name) a line.")
    return lines, problems
