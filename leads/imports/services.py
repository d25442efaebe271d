"""CSV import workflows: upload ⇒ mapping (guessed, saved, preset or uploaded) ⇒ preview ⇒
commit, in the request for small files and by a Celery worker for large ones. The import
itself is ``engine.import_file``; the web pages, the task and ``manage.py import_csv`` all come
through here.

Progress of a running import cannot be read from the database (the import is one transaction,
invisible until it commits), so the worker writes it to a small JSON file next to the upload,
which the web tier already shares with the workers (MEDIA_ROOT).
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leads.imports import csvfile, engine
from leads.imports.engine import COMMITTED, REJECTED, ImportReport
from leads.imports.mapping import (
    KINDS,
    SALES_REPS,
    Mapping,
    MappingError,
    compile_mapping,
    guess_mapping,
)
from leads.imports.presets import preset_get
from leads.models import (
    Account,
    EngagementEvent,
    ImportJob,
    Lead,
    Opportunity,
    SavedMapping,
    StageTransition,
)
from revops.maintenance import after_bulk_write

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5
STALE_AFTER_SECONDS = 120  # a running import whose progress stopped this long ago is dead
SAMPLE_ROWS = 20


class ImportRefused(ValueError):
    """The request cannot be served as asked (wrong state, too large…); the message says why."""


# --- Mappings -----------------------------------------------------------------------------------


def mapping_load(value: str, *, kind: str) -> Mapping:
    """A mapping from a JSON file's path, a preset name, or a saved mapping's name."""
    path = Path(value)
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            raise MappingError([f"No mapping file {value!r}."])
        return Mapping.from_json(path.read_text(encoding="utf-8-sig"), kind=kind)
    preset = preset_get(value)
    if preset is not None:
        if preset.kind != kind:
            raise MappingError([f"The preset {value!r} is for {preset.kind}, not {kind}."])
        return preset.to_mapping()
    saved = SavedMapping.objects.filter(kind=kind, name=value).first()
    if saved is not None:
        return Mapping.from_json(saved.mapping, kind=kind)
    raise MappingError(
        [f"{value!r} is neither a mapping file, a preset, nor a saved {kind} mapping."]
    )


def mapping_guess(path: Path, *, kind: str, name: str = "") -> tuple[Mapping, csvfile.CsvFormat]:
    fmt = csvfile.sniff(path)
    header, sample = csvfile.read_sample(path, fmt, rows=SAMPLE_ROWS)
    return guess_mapping(kind, header, sample, engine.mapping_context(), name=name), fmt


def mapping_check(mapping: Mapping, header: list[str]) -> None:
    """Raises MappingError listing every problem of the mapping against this header."""
    compile_mapping(mapping, header, engine.mapping_context())


def saved_mapping_save(*, name: str, mapping: Mapping, user=None) -> SavedMapping:
    """Keep a mapping under a name (replacing the one of that name and kind)."""
    name = name.strip()
    if not name:
        raise ImportRefused("Give the mapping a name.")
    data = {**mapping.to_json(), "name": name}
    with transaction.atomic():
        saved, _ = SavedMapping.objects.update_or_create(
            kind=mapping.kind, name=name, defaults={"mapping": data, "created_by": user}
        )
    return saved


# --- Jobs ---------------------------------------------------------------------------------------

# What importing a kind writes beyond ``leads.add_importjob``: reps and teams are the RevOps
# admin's to change (an importer in Marketing may not make them).
KIND_PERMISSIONS = {SALES_REPS: ("leads.add_salesrep", "leads.change_salesrep")}


def import_kind_check(*, kind: str, user) -> None:
    """Refuse an import of ``kind`` by a user who may not write what it writes."""
    needed = KIND_PERMISSIONS.get(kind, ())
    if user is not None and needed and not user.has_perms(needed):
        raise ImportRefused(
            "Importing sales reps and teams needs the permission to add and change sales reps "
            "(the RevOps admin's)."
        )


def import_job_create(
    *, kind: str, upload: UploadedFile, user=None, mapping: Mapping | None = None
) -> ImportJob:
    """Store the upload, read its format and header, and start from ``mapping`` (else a guess
    from the header)."""
    if kind not in KINDS:
        raise ImportRefused(f"Unknown import kind {kind!r}.")
    import_kind_check(kind=kind, user=user)
    if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
        raise ImportRefused(
            f"The file is {upload.size:,} bytes; the most an import takes is "
            f"{settings.IMPORT_MAX_UPLOAD_BYTES:,}."
        )
    job = ImportJob(
        kind=kind,
        original_name=Path(upload.name or "upload.csv").name[:255],
        file_size=upload.size,
        created_by=user,
    )
    job.file.save(upload.name or "upload.csv", upload, save=False)
    path = Path(job.file.path)
    try:
        fmt = csvfile.sniff(path, encoding=mapping.encoding if mapping else "auto",
                            delimiter=mapping.delimiter if mapping else "auto")  # fmt: skip
        head = csvfile.read_head(path, fmt, rows=SAMPLE_ROWS)
    except csvfile.CsvFileError as problem:
        job.file.delete(save=False)
        raise ImportRefused(str(problem)) from problem
    header = head.header
    if mapping is None:
        mapping = guess_mapping(kind, header, head.rows, engine.mapping_context())
    elif mapping.kind != kind:
        job.file.delete(save=False)
        raise ImportRefused(f"That mapping is for {mapping.kind}, not {kind}.")
    job.encoding, job.delimiter, job.header = fmt.encoding, fmt.delimiter, header
    job.mapping = mapping.to_json()
    job.report = {"encoding_note": fmt.note, "header_warnings": head.warnings}
    job.save()
    return job


def import_job_set_mapping(*, job: ImportJob, mapping: Mapping, skip_invalid: bool) -> ImportJob:
    """Keep the mapping being edited (even with problems: the page lists them)."""
    if job.status != ImportJob.Status.DRAFT:
        raise ImportRefused("This import has already been committed.")
    job.mapping = mapping.to_json()
    job.skip_invalid = skip_invalid
    job.save(update_fields=["mapping", "skip_invalid"])
    return job


def job_mapping(job: ImportJob) -> Mapping:
    return Mapping.from_json(job.mapping, kind=job.kind)


def import_job_preview(*, job: ImportJob, rows: int = engine.PREVIEW_ROWS) -> ImportReport:
    """The first rows, parsed, checked against the database and rolled back: what each would
    do and every problem, per row and field."""
    return engine.import_file(
        path=job.file.path,
        mapping=job_mapping(job),
        skip_invalid=job.skip_invalid,
        limit=rows,
        preview=True,
        actor_id=job.created_by_id,
        label=job.original_name,
    )


def import_job_commit(*, job: ImportJob, user=None) -> ImportJob:
    """Commit the import (``user``: who commits it): now when the file is small, else by a
    worker (the page polls)."""
    if job.status != ImportJob.Status.DRAFT:
        raise ImportRefused("This import has already been committed.")
    import_kind_check(kind=job.kind, user=user)
    mapping = job_mapping(job)
    mapping_check(mapping, job.header)
    if job.file_size <= settings.IMPORT_SYNC_MAX_BYTES:
        job.status = ImportJob.Status.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])
        return _run_and_record(job)
    job.status = ImportJob.Status.QUEUED
    job.save(update_fields=["status"])
    from leads.imports.tasks import enqueue_import

    transaction.on_commit(lambda: enqueue_import(job.pk))
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """The worker's side: claim a queued job (or one whose worker died), import, record."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return None
    if not claimed:
        if job.status != ImportJob.Status.RUNNING or not _stalled(job):
            return None  # done, or another worker is on it
        logger.warning("Import #%s stalled (its worker died?); running it again", job_id)
        ImportJob.objects.filter(pk=job_id).update(started_at=timezone.now())
    return _run_and_record(job)


def _stalled(job: ImportJob) -> bool:
    path = progress_path(job)
    last = path.stat().st_mtime if path.exists() else None
    if last is None:
        last = job.started_at.timestamp() if job.started_at else 0
    return time.time() - last > STALE_AFTER_SECONDS


def _run_and_record(job: ImportJob) -> ImportJob:
    reporter = _ProgressFile(job)
    try:
        report = engine.import_file(
            path=job.file.path,
            mapping=job_mapping(job),
            skip_invalid=job.skip_invalid,
            actor_id=job.created_by_id,
            label=f"{job.original_name} (import #{job.pk})",
            progress=reporter,
        )
    except Exception as problem:  # a bug or a time limit: the transaction rolled back
        logger.exception("Import #%s failed", job.pk)
        job.status = ImportJob.Status.FAILED
        job.message = f"The import failed and wrote nothing: {problem}"[:500]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "message", "finished_at"])
        return job
    finally:
        reporter.remove()
    job = _record(job, report)
    imported_tables_maintain(report)
    return job


# What an import can write: refreshed after a big one (see revops.maintenance).
IMPORTED_MODELS = (Account, Lead, EngagementEvent, StageTransition, Opportunity)


def imported_tables_maintain(report: ImportReport) -> str:
    """After a committed import, outside its transaction."""
    if report.status != COMMITTED:
        return ""
    return after_bulk_write(IMPORTED_MODELS, report.created + report.updated)


def _record(job: ImportJob, report: ImportReport) -> ImportJob:
    status = {COMMITTED: ImportJob.Status.DONE, REJECTED: ImportJob.Status.REJECTED}
    job.status = status.get(report.status, ImportJob.Status.FAILED)
    job.rows_total = report.rows
    job.created_count = report.created
    job.updated_count = report.updated
    job.unchanged_count = report.unchanged + report.duplicates
    job.skipped_count = report.skipped
    job.error_count = report.error_count
    job.report = report.as_dict()
    job.message = report.summary[:500]
    job.finished_at = timezone.now()
    job.save()
    return job


def import_record_cli_run(
    *, kind: str, path: Path, mapping: Mapping, report: ImportReport, user=None
) -> ImportJob:
    """The trace of a command-line import (its file stays where it was)."""
    job = ImportJob(
        kind=kind,
        original_name=str(path)[:255],
        file_size=path.stat().st_size if path.exists() else 0,
        encoding=report.encoding,
        delimiter=report.delimiter,
        header=report.header,
        mapping=mapping.to_json(),
        created_by=user,
        started_at=timezone.now(),
    )
    return _record(job, report)


# --- Progress -----------------------------------------------------------------------------------


def progress_path(job: ImportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / "progress" / f"{job.pk}.json"


class _ProgressFile:
    """Writes ``{fraction, rows}`` at most twice a second (atomically: write, then rename)."""

    def __init__(self, job: ImportJob) -> None:
        self.path = progress_path(job)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.last = 0.0
        self(0.0, 0)

    def __call__(self, fraction: float, rows: int) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_SECONDS and fraction < 1:
            return
        self.last = now
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps({"fraction": fraction, "rows": rows}))
        os.replace(partial, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def import_job_progress(job: ImportJob) -> dict:
    """For the progress bar: percent, rows read so far, status."""
    fraction, rows = 0.0, job.rows_total
    if job.is_finished:
        fraction = 1.0
    elif job.status == ImportJob.Status.RUNNING:
        try:
            data = json.loads(progress_path(job).read_text())
            fraction, rows = float(data["fraction"]), int(data["rows"])
        except (OSError, ValueError, KeyError):
            pass
    return {
        "job": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.is_finished,
        "percent": 100 if job.is_finished else min(99, int(fraction * 100)),
        "processed": rows,
        "message": job.message,
    }


def import_uploads_expire(*, now=None) -> int:
    """Delete uploaded files past ``IMPORT_UPLOAD_RETENTION_DAYS``: a finished import keeps its
    report and counts, only the raw file (contact details of every row) goes; a mapping left
    unfinished that long is closed as failed, since nothing can be imported without its file.
    Safe to re-run: a job whose file is gone is not looked at again."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.IMPORT_UPLOAD_RETENTION_DAYS)
    finished = (ImportJob.Status.DONE, ImportJob.Status.REJECTED, ImportJob.Status.FAILED)
    expired = ImportJob.objects.exclude(file="").filter(
        Q(status__in=finished, finished_at__lt=cutoff)
        | Q(status=ImportJob.Status.DRAFT, created_at__lt=cutoff)
    )
    count = 0
    for job in expired.iterator(chunk_size=200):
        update = {"file": ""}
        if job.status == ImportJob.Status.DRAFT:
            update |= {
                "status": ImportJob.Status.FAILED,
                "finished_at": now,
                "message": (
                    f"Never imported: the upload was deleted after "
                    f"{settings.IMPORT_UPLOAD_RETENTION_DAYS} days. Upload the file again."
                ),
            }
        # The row first, and only while still in the state it was read in: a draft committed
        # meanwhile keeps its file.
        if ImportJob.objects.filter(pk=job.pk, status=job.status).update(**update):
            job.file.storage.delete(job.file.name)
            count += 1
    return count
