"""``manage.py import_csv <kind> <file> --mapping <preset | saved name | mapping.json>``: the
same import as the web pages, in this process."""

import json
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads.imports import engine
from leads.imports.csvfile import CsvFileError
from leads.imports.mapping import KINDS, MappingError
from leads.imports.presets import PRESETS
from leads.imports.services import (
    import_record_cli_run,
    imported_tables_maintain,
    mapping_guess,
    mapping_load,
)

ERRORS_SHOWN = 50
PROGRESS_EVERY_SECONDS = 2.0


class Command(BaseCommand):
    help = (
        "Import a CSV file of accounts, leads, events or opportunities. --mapping names a preset "
        f"({', '.join(PRESETS)}), a mapping saved in the app, or a mapping JSON file (download "
        "one from the import page, or start from --print-mapping). Without --mapping the "
        "mapping is guessed from the header. All or nothing unless --skip-invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("file", type=Path)
        parser.add_argument("--mapping", default="", help="Preset, saved mapping name or file.")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid rows and report every skipped one (default: all or nothing).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check every row, write nothing."
        )
        parser.add_argument(
            "--print-mapping",
            action="store_true",
            help="Print the mapping (guessed, or the one named) as JSON and stop.",
        )
        parser.add_argument("--report", type=Path, help="Write the full report (JSON) here.")
        parser.add_argument("--user", default="", help="Username recorded as the importer.")

    def handle(self, *args, **options) -> None:
        kind, path = options["kind"], options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            if options["mapping"]:
                mapping = mapping_load(options["mapping"], kind=kind)
            else:
                mapping, _ = mapping_guess(path, kind=kind, name=f"Guessed from {path.name}")
                if not options["print_mapping"]:
                    self.stderr.write("No --mapping: using the one guessed from the header.")
        except (MappingError, CsvFileError) as problem:
            raise CommandError(str(problem)) from problem
        if options["print_mapping"]:
            self.stdout.write(json.dumps(mapping.to_json(), indent=2, ensure_ascii=False))
            return
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
        self.last_progress = time.monotonic()
        report = engine.import_file(
            path=path,
            mapping=mapping,
            skip_invalid=options["skip_invalid"],
            dry_run=options["dry_run"],
            actor_id=user.pk if user else None,
            label=path.name,
            progress=self.progress if options["verbosity"] >= 1 else None,
        )
        self.print_report(report)  # the outcome first: "Rejected, nothing imported" …
        if not options["dry_run"] and not report.problems:
            job = import_record_cli_run(kind=kind, path=path, mapping=mapping, report=report,
                                        user=user)  # fmt: skip
            self.stdout.write(f"Recorded as import #{job.pk}.")
            imported_tables_maintain(report)
        if options["report"]:
            options["report"].write_text(json.dumps(report.as_dict(), indent=2, default=str))
        if report.status == engine.REJECTED:
            raise CommandError("Nothing imported." if report.problems else report.summary)

    def progress(self, fraction: float, rows: int) -> None:
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY_SECONDS:
            self.last_progress = now
            self.stderr.write(f"  … {fraction:6.1%} of the file, {rows:,} rows")

    def print_report(self, report: engine.ImportReport) -> None:
        delimiter = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(
            report.delimiter, repr(report.delimiter)
        )
        if report.encoding:
            self.stdout.write(f"File: {report.encoding_note}, {delimiter}-separated.")
        for warning in report.warnings:  # e.g. a header naming a column twice
            self.stdout.write(self.style.WARNING(warning))
        if report.problems:
            self.stdout.write(
                self.style.ERROR("Nothing imported; the mapping or file is unusable:")
            )
            for problem in report.problems:
                self.stdout.write(f"  {problem}")
            return
        style = self.style.SUCCESS if report.status == engine.COMMITTED else self.style.WARNING
        rejected = report.status == engine.REJECTED
        if rejected:
            self.stdout.write(style(report.summary))
        for note in report.notes:
            self.stdout.write(note)
        for error in report.errors[:ERRORS_SHOWN]:
            self.stdout.write(f"  {error}")
        hidden = report.error_count - min(len(report.errors), ERRORS_SHOWN)
        if hidden > 0:
            self.stdout.write(f"  … and {hidden:,} more problems (see --report).")
        if rejected:  # nothing was written: no counts of what was
            self.stdout.write(f"{report.seconds:.2f} s.")
            return
        extras = []
        if report.created_refs:
            made = ", ".join(f"{count:,} {kind}" for kind, count in report.created_refs.items())
            extras.append(f"also created {made}")
        if report.transitions:
            extras.append(f"{report.transitions:,} stage history rows")
        if report.rescore_leads:
            extras.append(f"{report.rescore_leads:,} leads queued for rescoring")
        self.stdout.write(style(report.summary))
        if extras:
            self.stdout.write("; ".join(extras).capitalize() + ".")
        self.stdout.write(f"{report.seconds:.2f} s, {report.rows_per_second:,.0f} rows/s.")
