"""Uploaded files hold every row's contact details: past the retention they are deleted, while
the import's report and counts stay; an unfinished mapping that old is closed."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from leads.imports import services
from leads.imports.tasks import expire_import_uploads
from leads.models import ImportJob

pytestmark = pytest.mark.django_db
CSV = b"Email,First Name\nada@example.com,Ada\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_UPLOAD_RETENTION_DAYS = 30
    return settings.MEDIA_ROOT


def uploaded(*, status: str, days_ago: int) -> ImportJob:
    job = services.import_job_create(
        kind="leads", upload=SimpleUploadedFile("contacts.csv", CSV, "text/csv")
    )
    at = timezone.now() - timedelta(days=days_ago)
    finished_at = at if status != ImportJob.Status.DRAFT else None
    report = {"created": 1} if status == ImportJob.Status.DONE else {}
    ImportJob.objects.filter(pk=job.pk).update(
        status=status, created_at=at, finished_at=finished_at, report=report, created_count=1
    )
    job.refresh_from_db()
    return job


def test_old_uploads_are_deleted_and_their_reports_kept(admin_client):
    old_done = uploaded(status=ImportJob.Status.DONE, days_ago=31)
    old_rejected = uploaded(status=ImportJob.Status.REJECTED, days_ago=40)
    recent_done = uploaded(status=ImportJob.Status.DONE, days_ago=29)
    queued = uploaded(status=ImportJob.Status.QUEUED, days_ago=90)  # still to be imported
    paths = {job.pk: Path(job.file.path) for job in (old_done, old_rejected, recent_done, queued)}

    assert expire_import_uploads.delay().get() == 2

    assert not paths[old_done.pk].exists() and not paths[old_rejected.pk].exists()
    assert paths[recent_done.pk].exists() and paths[queued.pk].exists()
    old_done.refresh_from_db()
    assert (old_done.file.name, old_done.status) == ("", ImportJob.Status.DONE)
    assert (old_done.created_count, old_done.report) == (1, {"created": 1})
    page = admin_client.get(reverse("leads:imports:job", args=[old_done.pk]))
    assert page.status_code == 200
    assert expire_import_uploads.delay().get() == 0  # nothing twice


def test_an_old_unfinished_mapping_is_closed_with_a_reason(admin_client):
    draft = uploaded(status=ImportJob.Status.DRAFT, days_ago=31)
    path = Path(draft.file.path)

    assert services.import_uploads_expire() == 1

    draft.refresh_from_db()
    assert not path.exists()
    assert draft.status == ImportJob.Status.FAILED
    assert "Upload the file again" in draft.message
    page = admin_client.get(reverse("leads:imports:job", args=[draft.pk]))
    assert page.status_code == 200
    assert "Upload the file again" in page.content.decode()
