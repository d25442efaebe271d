"""``manage.py import_csv``: the same import from the command line, with a preset, a saved
mapping or a mapping file."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from leads.imports.mapping import Mapping
from leads.imports.services import saved_mapping_save
from leads.models import ImportJob, Lead

pytestmark = pytest.mark.django_db

CSV = (
    "Email,First Name,Lead Source,Created\n"
    "ada@example.com,Ada,Webinar,2026-03-02\n"
    "grace@example.com,Grace,Webinar,2026-03-03\n"
)
MAPPING = {
    "kind": "leads",
    "fields": {
        "email": "Email",
        "first_name": "First Name",
        "source": "Lead Source",
        "created_at": {"column": "Created", "format": "%Y-%m-%d"},
    },
}


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("import_csv", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_with_a_mapping_file(csv_file, tmp_path):
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    out, _ = run("leads", csv_file, "--mapping", mapping)
    assert "2 rows: 2 created, 0 updated, 0 unchanged." in out
    assert "Also created 1 sources; 2 stage history rows; 2 leads queued for rescoring." in out
    assert Lead.objects.count() == 2
    job = ImportJob.objects.get()
    assert (job.status, job.created_count, job.original_name) == ("done", 2, str(csv_file))


def test_print_mapping_starts_a_mapping_file_from_the_header(csv_file):
    out, _ = run("leads", csv_file, "--print-mapping")
    printed = Mapping.from_json(out)
    assert printed.specs["email"].column == "Email"
    assert printed.specs["source"].column == "Lead Source"
    assert not Lead.objects.exists()


def test_a_saved_mapping_by_name_and_a_dry_run(csv_file):
    saved_mapping_save(name="Fair leads", mapping=Mapping.from_json(MAPPING))
    out, _ = run("leads", csv_file, "--mapping", "Fair leads", "--dry-run")
    assert out.startswith("File: UTF-8, comma-separated.")
    assert "Dry run, nothing written: 2 rows: 2 created" in out
    assert not Lead.objects.exists() and not ImportJob.objects.exists()


def test_a_rejected_import_fails_the_command_and_lists_the_rows(csv_file, tmp_path):
    csv_file.write_text(CSV + "broken,Eve,Webinar,2026-13-01\n", encoding="utf-8")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    report_file = tmp_path / "report.json"
    with pytest.raises(CommandError, match="Rejected, nothing imported: 1 of 3 rows"):
        run("leads", csv_file, "--mapping", mapping, "--report", report_file)
    report = json.loads(report_file.read_text())
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "email"), (4, "created_at")]
    assert not Lead.objects.exists()
    out, _ = run("leads", csv_file, "--mapping", mapping, "--skip-invalid")
    assert "1 invalid row skipped" in out and "row 4, Email: 'broken'" in out
    assert Lead.objects.count() == 2


def test_unknown_mappings_and_files_are_refused(csv_file):
    with pytest.raises(
        CommandError, match="neither a mapping file, a preset, nor a saved leads mapping"
    ):
        run("leads", csv_file, "--mapping", "no-such-thing")
    with pytest.raises(CommandError, match="is for accounts, not leads"):
        run("leads", csv_file, "--mapping", "maven-accounts")
    with pytest.raises(CommandError, match="No mapping file"):
        run("leads", csv_file, "--mapping", csv_file.parent / "missing.json")
    with pytest.raises(CommandError, match="No such file"):
        run("leads", csv_file.parent / "missing.csv")


def test_a_rejected_import_says_so_first_and_reports_nothing_as_written(csv_file, tmp_path):
    """It printed "Recorded as import #2." before "Rejected, nothing imported", and the stage
    history rows of the chunk written before the bad row."""
    csv_file.write_text(CSV + "broken,Eve,Webinar,2026-03-04\n", encoding="utf-8")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("import_csv", "leads", str(csv_file), "--mapping", str(mapping),
                     stdout=out, stderr=err)  # fmt: skip
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("Rejected, nothing imported: 1 of 3 rows have problems.")
    assert lines.index(next(line for line in lines if line.startswith("Recorded as import"))) > 1
    assert "stage history" not in out.getvalue() and "also created" not in out.getvalue().lower()
    assert "Dates without a time are read as America/New_York days." in out.getvalue()
    job = ImportJob.objects.get()
    assert (job.status, job.created_count) == ("rejected", 0)


def test_a_header_naming_a_column_twice_is_warned_about(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("Email,First Name,email\nada@example.com,Ada,ada@work.example\n")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({**MAPPING, "fields": {"email": "Email"}}))
    out, _ = run("leads", str(path), "--mapping", str(mapping))
    assert "The header names “Email” 2 times (columns 1, 3)" in out
    assert Lead.objects.get().email == "ada@example.com"  # the first column, as it says


def test_an_import_rolled_back_by_a_deadlock_is_written_again_once(csv_file, tmp_path, monkeypatch):
    """PostgreSQL breaks a deadlock (a long import against concurrent API batches) by rolling
    one transaction back: the import, all or nothing, is written again, and exactly once."""
    from django.db import OperationalError

    from leads.imports import engine

    class DeadlockCause(Exception):
        pgcode = engine.DEADLOCK

    real = engine._owners_become_reps
    refusals = []

    def deadlock_once(run):
        if not run.validate_only and not refusals:
            refusals.append(run)
            error = OperationalError("deadlock detected")
            error.__cause__ = DeadlockCause()
            raise error
        return real(run)

    monkeypatch.setattr(engine, "_owners_become_reps", deadlock_once)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    out, _ = run("leads", csv_file, "--mapping", mapping)
    assert len(refusals) == 1
    assert "2 rows: 2 created" in out
    assert sorted(Lead.objects.values_list("email", flat=True)) == [
        "ada@example.com",
        "grace@example.com",
    ]
