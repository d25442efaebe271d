"""Reading an uploaded CSV: its encoding, its delimiter, and its rows as a stream. No ORM.

CRM exports arrive in every shape: UTF-8 with or without a byte-order mark (Excel writes one),
UTF-16 from Excel's "Unicode text", Windows-1252 from older tools, and semicolons or tabs where
the locale uses a decimal comma. The file is never loaded whole: rows stream from disk, and the
byte position read so far drives the progress bar.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from revops.text import control_character_problem

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1")
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 50
BLOCK = 1 << 20
# A single cell of a CRM export can hold a long note; the csv module's default limit is 128 KiB.
FIELD_SIZE_LIMIT = 10 * 1024 * 1024


class CsvFileError(Exception):
    """The file cannot be read as CSV at all (not a per-row problem)."""


@dataclass(frozen=True)
class CsvFormat:
    encoding: str  # a Python codec name
    delimiter: str
    note: str  # how the encoding was chosen, for the import report

    @property
    def delimiter_name(self) -> str:
        return DELIMITERS.get(self.delimiter, repr(self.delimiter))


def detect_encoding(path: Path) -> tuple[str, str]:
    """(codec, note). A byte-order mark decides; else strict UTF-8 over the whole file (read in
    blocks), else Windows-1252, else Latin-1 (which reads any byte)."""
    with open(path, "rb") as raw:
        start = raw.read(4)
        if start.startswith(codecs.BOM_UTF8):
            return "utf-8-sig", "UTF-8 (with a byte-order mark)"
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16", "UTF-16 (with a byte-order mark)"
        raw.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        try:
            while block := raw.read(BLOCK):
                decoder.decode(block)
                offset += len(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as problem:
            bad_at = offset + problem.start
            raw.seek(bad_at)
            bad_byte = raw.read(1)
            why = f"not valid UTF-8 (byte 0x{bad_byte.hex().upper()} at offset {bad_at:,})"
            raw.seek(0)
            try:
                decoder = codecs.getincrementaldecoder("cp1252")()
                while block := raw.read(BLOCK):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return "latin-1", f"{why}, nor Windows-1252: read as Latin-1 (ISO 8859-1)"
            return "cp1252", f"{why}: read as Windows-1252"
    return "utf-8", "UTF-8"


def detect_delimiter(sample: str) -> str:
    """The candidate that splits the first lines into the most columns, consistently. Quoted
    fields are honoured, so commas inside quoted names do not fool it."""
    lines = sample.splitlines()[:SNIFF_LINES]
    if len(lines) > 1:
        lines = lines[:-1]  # the sample may end mid-line
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        try:
            widths = [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        consistency = sum(1 for width in widths if width == widths[0]) / len(widths)
        score = (consistency, widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def sniff(path: Path, *, encoding: str = "auto", delimiter: str = "auto") -> CsvFormat:
    """The file's format: detected unless the mapping fixes it."""
    path = Path(path)
    if encoding in ("", "auto"):
        encoding, note = detect_encoding(path)
    else:
        try:
            codecs.lookup(encoding)
        except LookupError as missing:
            raise CsvFileError(f"Unknown encoding {encoding!r}.") from missing
        note = f"{encoding} (as the mapping says)"
    if delimiter in ("", "auto"):
        with open(path, encoding=encoding, errors="replace", newline="") as text:
            delimiter = detect_delimiter(text.read(SNIFF_BYTES))
    elif delimiter == "\\t" or delimiter.lower() == "tab":
        delimiter = "\t"
    if len(delimiter) != 1:
        raise CsvFileError(f"The delimiter must be one character, not {delimiter!r}.")
    return CsvFormat(encoding=encoding, delimiter=delimiter, note=note)


class _CountingReader(io.RawIOBase):
    """A binary file that counts the bytes handed to the decoder (for progress), and refuses
    NUL bytes: no text encoding but UTF-16 has them, and PostgreSQL text cannot hold them."""

    def __init__(self, raw, *, allow_nul: bool) -> None:
        self.raw = raw
        self.bytes_read = 0
        self.allow_nul = allow_nul

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        if count and not self.allow_nul:
            position = bytes(memoryview(buffer)[:count]).find(b"\x00")
            if position >= 0:
                raise CsvFileError(
                    f"The file has a NUL byte at offset {self.bytes_read + position:,}: is it "
                    "really a CSV file (not an Excel workbook, nor UTF-16 without a byte-order "
                    "mark)?"
                )
        self.bytes_read += count or 0
        return count


@dataclass
class CsvRows:
    """The header and a stream of ``(row number, cells)``; row numbers are those a spreadsheet
    shows (the header is row 1). Blank lines are skipped."""

    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    counter: _CountingReader
    size: int
    warnings: list[str]  # about the header (repeated names), for the preview and the report
    # The same stream, ``size`` rows at a time (the rows ``rows`` has not given yet).
    chunks: Callable[[int], Iterator[list[tuple[int, list[str]]]]] | None = None

    @property
    def fraction_read(self) -> float:
        return min(1.0, self.counter.bytes_read / self.size) if self.size else 1.0


def unique_header(cells: list[str]) -> list[str]:
    """Header names stripped; blank ones named after their position; repeats numbered."""
    return _header(cells)[0]


def _header(cells: list[str]) -> tuple[list[str], list[str]]:
    """(names, warnings): a repeated name is numbered ("email (2)") and warned about, since a
    mapping naming it takes the first column and the importer must say which one is meant. A
    control character in a name refuses the file (it is not the encoding we guessed)."""
    header, seen, columns = [], {}, {}
    for index, cell in enumerate(cells, start=1):
        problem = control_character_problem(cell)
        if problem:
            raise CsvFileError(
                f"The header's column {index} ({cell.strip()!r}) {problem}: is the file in "
                "another encoding? Save it as UTF-8, or name its encoding in the mapping."
            )
        name = cell.strip().lstrip("\ufeff") or f"Column {index}"
        key = name.lower()
        columns.setdefault(key, []).append((index, name))
        if key in seen:
            seen[key] += 1
            name = f"{name} ({seen[key]})"
        seen.setdefault(name.lower(), 1)
        header.append(name)
    warnings = []
    for repeats in columns.values():
        if len(repeats) < 2:
            continue
        positions = ", ".join(str(index) for index, _ in repeats)
        names = ", ".join(f"“{header[index - 1]}”" for index, _ in repeats)
        warnings.append(
            f"The header names “{repeats[0][1]}” {len(repeats)} times (columns {positions}): "
            f"they are read as {names}. A mapping naming “{repeats[0][1]}” takes column "
            f"{repeats[0][0]}; check that it is the one you mean, or rename the others."
        )
    return header, warnings


@contextmanager
def open_rows(path: Path, fmt: CsvFormat) -> Iterator[CsvRows]:
    """Stream a CSV file's rows. A malformed file raises CsvFileError naming the row."""
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    path = Path(path)
    with open(path, "rb") as raw:
        counter = _CountingReader(raw, allow_nul=fmt.encoding.startswith("utf-16"))
        buffered = io.BufferedReader(counter, buffer_size=BLOCK)
        text = io.TextIOWrapper(buffered, encoding=fmt.encoding, errors="strict", newline="")
        reader = csv.reader(text, delimiter=fmt.delimiter)
        try:
            first = next(reader, None)
            while first is not None and not any(cell.strip() for cell in first):
                first = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as problem:
            raise CsvFileError(f"The header cannot be read: {problem}") from problem
        if first is None:
            raise CsvFileError("The file is empty: no header row.")
        header, warnings = _header(first)

        def rows() -> Iterator[tuple[int, list[str]]]:
            row_number = 1
            try:
                for cells in reader:
                    row_number += 1
                    if not cells or (len(cells) == 1 and not cells[0].strip()):
                        continue
                    yield row_number, cells
            except csv.Error as problem:
                raise CsvFileError(f"Row {row_number + 1} is not valid CSV: {problem}") from None
            except UnicodeDecodeError as problem:
                raise CsvFileError(
                    f"Row {row_number + 1} cannot be decoded as {fmt.encoding}: {problem.reason}"
                ) from None

        def chunks(size: int) -> Iterator[list[tuple[int, list[str]]]]:
            # As rows(), with the per-row work in C (islice, map) unless a chunk has blanks.
            row_number = 1
            while True:
                batch: list[list[str]] = []
                try:
                    batch.extend(islice(reader, size))  # keeps the rows read before an error
                except csv.Error as problem:
                    row_number += len(batch)
                    raise CsvFileError(
                        f"Row {row_number + 1} is not valid CSV: {problem}"
                    ) from None
                except UnicodeDecodeError as problem:
                    row_number += len(batch)
                    raise CsvFileError(
                        f"Row {row_number + 1} cannot be decoded as {fmt.encoding}: "
                        f"{problem.reason}"
                    ) from None
                if not batch:
                    return
                numbered = zip(
                    range(row_number + 1, row_number + 1 + len(batch)), batch, strict=True
                )
                row_number += len(batch)
                if {0, 1} & set(map(len, batch)):
                    yield [(number, cells) for number, cells in numbered
                           if cells and not (len(cells) == 1 and not cells[0].strip())]  # fmt: skip
                else:
                    yield list(numbered)

        yield CsvRows(
            header=header,
            rows=rows(),
            counter=counter,
            size=path.stat().st_size,
            warnings=warnings,
            chunks=chunks,
        )


@dataclass(frozen=True)
class CsvSample:
    header: list[str]
    rows: list[list[str]]
    warnings: list[str]


def read_head(path: Path, fmt: CsvFormat, *, rows: int = 20) -> CsvSample:
    """The header, its warnings and the first rows (for guessing a mapping and previewing it)."""
    sample = []
    with open_rows(path, fmt) as csv_rows:
        for _, cells in csv_rows.rows:
            sample.append(cells)
            if len(sample) >= rows:
                break
        return CsvSample(header=csv_rows.header, rows=sample, warnings=csv_rows.warnings)


def read_sample(path: Path, fmt: CsvFormat, *, rows: int = 20) -> tuple[list[str], list[list]]:
    """The header and the first rows."""
    head = read_head(path, fmt, rows=rows)
    return head.header, head.rows
