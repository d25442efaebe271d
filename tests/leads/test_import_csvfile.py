"""Reading uploaded CSV files: encodings, byte-order marks, delimiters, broken files. No ORM."""

import codecs

import pytest

from leads.imports.csvfile import CsvFileError, open_rows, read_head, read_sample, sniff

HEADER = "Email,First Name,Company"


def write(tmp_path, data: bytes, name="file.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows_of(path, **kwargs):
    fmt = sniff(path, **kwargs)
    with open_rows(path, fmt) as csv_rows:
        return fmt, csv_rows.header, list(csv_rows.rows)


def test_plain_utf8(tmp_path):
    path = write(tmp_path, f"{HEADER}\nada@x.com,Ada,Zürich AG\n".encode())
    fmt, header, rows = rows_of(path)
    assert (fmt.encoding, fmt.delimiter, fmt.note) == ("utf-8", ",", "UTF-8")
    assert header == ["Email", "First Name", "Company"]
    assert rows == [(2, ["ada@x.com", "Ada", "Zürich AG"])]


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + f"{HEADER}\r\nada@x.com,Ada,Acme\r\n".encode())
    fmt, header, rows = rows_of(path)
    assert fmt.encoding == "utf-8-sig"
    assert fmt.note == "UTF-8 (with a byte-order mark)"
    assert header[0] == "Email"
    assert rows[0][1][0] == "ada@x.com"


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_other_delimiters_are_sniffed(tmp_path, delimiter, name):
    text = (
        f'Email{delimiter}Name{delimiter}Amount\na@x.com{delimiter}"Ada, Countess"{delimiter}1,5\n'
    )
    fmt, _, rows = rows_of(write(tmp_path, text.encode()))
    assert (fmt.delimiter, fmt.delimiter_name) == (delimiter, name)
    assert rows == [(2, ["a@x.com", "Ada, Countess", "1,5"])]


def test_commas_inside_quotes_do_not_fool_the_sniffer(tmp_path):
    text = 'Name;Note\n"Lovelace, Ada";"a, b, c, d"\n"Hopper, Grace";x\n'
    fmt, _, rows = rows_of(write(tmp_path, text.encode()))
    assert fmt.delimiter == ";"
    assert rows[0][1] == ["Lovelace, Ada", "a, b, c, d"]


def test_windows_1252_is_detected_and_named(tmp_path):
    path = write(tmp_path, f"{HEADER}\nrene@x.com,René,Café – 5€\n".encode("cp1252"))
    fmt, _, rows = rows_of(path)
    assert fmt.encoding == "cp1252"
    assert fmt.note == "not valid UTF-8 (byte 0xE9 at offset 39): read as Windows-1252"
    assert rows[0][1] == ["rene@x.com", "René", "Café – 5€"]


def test_latin1_when_not_even_windows_1252(tmp_path):
    # 0x81 is undefined in Windows-1252; Latin-1 reads every byte.
    path = write(tmp_path, b"Email,Name\nx@x.com,Fran\xe7ois\x81\n")
    fmt, _, rows = rows_of(path)
    assert fmt.encoding == "latin-1"
    assert "nor Windows-1252: read as Latin-1" in fmt.note
    assert rows[0][1][1] == "François\x81"


def test_utf16_from_excel_unicode_text(tmp_path):
    path = write(tmp_path, "Email\tName\nada@x.com\tÅda\n".encode("utf-16"))
    fmt, header, rows = rows_of(path)
    assert header == ["Email", "Name"]
    assert (fmt.encoding, fmt.delimiter) == ("utf-16", "\t")
    assert rows == [(2, ["ada@x.com", "Åda"])]


def test_an_encoding_named_by_the_mapping_wins(tmp_path):
    path = write(tmp_path, "Email,Name\nx@x.com,Ærø\n".encode("latin-1"))
    fmt, _, rows = rows_of(path, encoding="latin-1", delimiter=",")
    assert fmt.note == "latin-1 (as the mapping says)"
    assert rows[0][1][1] == "Ærø"
    with pytest.raises(CsvFileError, match="Unknown encoding"):
        sniff(path, encoding="klingon")


def test_row_numbers_are_the_spreadsheets_and_blank_lines_are_skipped(tmp_path):
    text = 'Email,Note\na@x.com,"two\nlines"\n\nb@x.com,x\n'
    _, _, rows = rows_of(write(tmp_path, text.encode()))
    assert [number for number, _ in rows] == [2, 4]


def test_header_names_are_trimmed_and_repeats_numbered(tmp_path):
    _, header, _ = rows_of(write(tmp_path, b" Email ,Name,,name\nx,y,z,w\n"))
    assert header == ["Email", "Name", "Column 3", "name (2)"]


def test_a_repeated_header_name_is_warned_about_with_its_columns(tmp_path):
    path = write(tmp_path, b"email,Name,Email,email\na@x.com,Ada,b@x.com,c@x.com\n")
    with open_rows(path, sniff(path)) as csv_rows:
        assert csv_rows.header == ["email", "Name", "Email (2)", "email (3)"]
        assert csv_rows.warnings == [
            "The header names “email” 3 times (columns 1, 3, 4): they are read as “email”, "
            "“Email (2)”, “email (3)”. A mapping naming “email” takes column 1; check that it "
            "is the one you mean, or rename the others."
        ]
    clean = write(tmp_path, b"Email,Name\nx,y\n", "clean.csv")
    assert read_head(clean, sniff(clean)).warnings == []


def test_a_control_character_in_the_header_refuses_the_file_naming_the_column(tmp_path):
    # 0x81 is undefined in Windows-1252: the file falls back to Latin-1, U+0081 in the header.
    path = write(tmp_path, b"Email,Na\x81me\nx@x.com,y\n")
    with pytest.raises(CsvFileError, match=r"column 2 \('Na\\x81me'\) holds the control char"):
        rows_of(path)


def test_an_empty_file_or_a_broken_one_is_refused(tmp_path):
    with pytest.raises(CsvFileError, match="empty"):
        rows_of(write(tmp_path, b"", "empty.csv"))
    path = write(tmp_path, b"Email,Name\nx@x.com,\x00bad\n", "nul.csv")
    with pytest.raises(CsvFileError, match="NUL byte at offset 19: is it really a CSV file"):
        rows_of(path, encoding="utf-8", delimiter=",")


def test_read_sample_stops_early(tmp_path):
    path = write(tmp_path, ("Email\n" + "".join(f"l{i}@x.com\n" for i in range(100))).encode())
    header, sample = read_sample(path, sniff(path), rows=5)
    assert header == ["Email"] and len(sample) == 5
