"""Text from outside that we would store: control characters are refused where they arrive,
with where they were, rather than stored invisibly. No ORM.

NUL cannot be stored by PostgreSQL at all (``revops.middleware`` refuses it in every request);
the other C0 controls (but tab, line feed and carriage return, which notes legitimately hold),
DEL and the C1 controls U+0080–U+009F are invisible on every page and export, and in an
uploaded file they almost always mean a wrong guess of its encoding (a Windows-1252 file with
a stray byte read as Latin-1 turns ``€`` into U+0080).
"""

from __future__ import annotations

import re
import unicodedata

CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# unicodedata has no names for controls; the ones people meet in files.
_NAMES = {
    "\x00": "NUL",
    "\x1b": "ESC",
    "\x7f": "DEL",
    "\x80": "PAD, € in Windows-1252",
    "\x85": "NEL, … in Windows-1252",
    "\x92": "PU2, ’ in Windows-1252",
    "\x93": "STS, “ in Windows-1252",
    "\x94": "CCH, ” in Windows-1252",
    "\x96": "SPA, – in Windows-1252",
}


def control_character_problem(text: str) -> str | None:
    """None for clean text, else what is wrong and where: ``holds the control character
    U+0081 at character 9``."""
    found = CONTROL_CHARACTERS.search(text)
    if found is None:
        return None
    char = found.group()
    name = _NAMES.get(char) or unicodedata.name(char, "")
    named = f" ({name})" if name else ""
    return f"holds the control character U+{ord(char):04X}{named} at character {found.start() + 1}"
