"""CSV imports: each upload and what became of it, and column mappings saved for reuse."""

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.utils import timezone


def import_upload_to(instance, filename: str) -> str:
    """Uploads live under MEDIA_ROOT/imports/<year>/<month>/, under a name nobody can guess."""
    suffix = PurePosixPath(filename).suffix.lower()[:10] or ".csv"
    return f"imports/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{suffix}"


class ImportKind(models.TextChoices):
    ACCOUNTS = "accounts", "Accounts"
    LEADS = "leads", "Leads (contacts)"
    EVENTS = "events", "Engagement events"
    OPPORTUNITIES = "opportunities", "Opportunities (deals)"
    SALES_REPS = "sales_reps", "Sales reps and teams"


class ImportJob(models.Model):
    """One CSV file on its way in: uploaded, mapped, previewed, then committed (in the request
    for small files, by a Celery worker for large ones). A commit is one transaction: it lands
    whole, or — rejected or failed — changes nothing."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Imported"
        REJECTED = "rejected", "Rejected: nothing imported"
        FAILED = "failed", "Failed: nothing imported"

    kind = models.CharField(max_length=20, choices=ImportKind.choices)
    file = models.FileField(upload_to=import_upload_to, max_length=300, blank=True)
    original_name = models.CharField(max_length=255)
    file_size = models.PositiveBigIntegerField(default=0)
    encoding = models.CharField(
        max_length=20, blank=True, help_text="The codec the file is read with."
    )
    delimiter = models.CharField(max_length=4, blank=True)
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True, help_text="The mapping JSON used.")
    skip_invalid = models.BooleanField(
        default=False,
        help_text="Import the valid rows and report the others (else all or nothing).",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    rows_total = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0, help_text="Invalid rows left out.")
    error_count = models.PositiveIntegerField(default=0, help_text="Problems found, all rows.")
    report = models.JSONField(
        default=dict, blank=True, help_text="The import report: notes, counts, row errors."
    )
    message = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="import_jobs",
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="importjob_status_created")]

    def __str__(self) -> str:
        return f"Import #{self.pk} of {self.get_kind_display().lower()} ({self.original_name})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.REJECTED, self.Status.FAILED)


class SavedMapping(models.Model):
    """A column mapping kept for the next export from the same tool (e.g. "HubSpot contacts");
    downloadable as the JSON file ``manage.py import_csv --mapping`` reads."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=ImportKind.choices)
    mapping = models.JSONField(help_text="The mapping JSON (format revops.import-mapping/1).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="leads_savedmapping_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display().lower()})"
