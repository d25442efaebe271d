"""The import pages: upload ⇒ guessed mapping and preview ⇒ edit ⇒ commit (in the request or
by a worker, with a progress bar) ⇒ report; saved and downloadable mappings."""

import json

import pytest
from django import forms
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from leads.imports.mapping import Mapping
from leads.imports.services import progress_path
from leads.models import ImportJob, Lead, SavedMapping
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CSV = (
    "Email,First Name,Company,Lead Source,Lifecycle Stage,Create Date\r\n"
    "ada@example.com,Ada,Engines Ltd,Webinar,MQL,03/02/2026 09:30\r\n"
    "grace@example.com,Grace,Navy,Webinar,Subscriber,03/03/2026 10:00\r\n"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(client, text=CSV, name="contacts.csv", kind="leads", **extra):
    data = {"kind": kind, "file": SimpleUploadedFile(name, text.encode("utf-8")), **extra}
    return client.post("/leads/imports/", data)


def form_data(form) -> dict:
    """What the browser would post back for the form as rendered."""
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    return data


def test_importing_needs_login_and_the_permission(client):
    assert client.get("/leads/imports/").status_code == 302
    user = UserFactory()
    client.force_login(user)
    assert client.get("/leads/imports/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="add_importjob"))
    user = type(user).objects.get(pk=user.pk)  # a fresh permission cache
    client.force_login(user)
    assert client.get("/leads/imports/").status_code == 200


def test_upload_guesses_the_mapping_and_previews_without_writing(admin_client, media):
    response = upload(admin_client)
    job = ImportJob.objects.get()
    assert response.url == f"/leads/imports/{job.pk}/"
    assert (job.status, job.encoding, job.delimiter) == ("draft", "utf-8", ",")
    assert str(media) in job.file.path and job.file.path.endswith(".csv")
    page = admin_client.get(response.url)
    assert page.status_code == 200
    mapping = Mapping.from_json(job.mapping)
    assert mapping.specs["created_at"].format == "%m/%d/%Y %H:%M"
    assert mapping.specs["stage"].column == "Lifecycle Stage"
    preview = page.context["preview"]
    assert (preview.rows, preview.created, preview.status) == (2, 2, "dry_run")
    assert [row["action"] for row in preview.preview] == ["create", "create"]
    assert b"Would also create: 1 sources, 2 accounts" in page.content
    assert not Lead.objects.exists()


def test_the_mapping_page_warns_about_a_repeated_header_name(admin_client):
    text = "email,First Name,email\r\nada@example.com,Ada,ada@work.example\r\n"
    page = admin_client.get(upload(admin_client, text).url)
    assert page.status_code == 200
    assert "The header names “email” 2 times (columns 1, 3)" in page.content.decode()


def test_preview_shows_each_rows_problems(admin_client):
    bad = CSV + "not-an-email,Eve,Nowhere,Webinar,Hot,02/30/2026 10:00\r\n"
    job_url = upload(admin_client, bad).url
    page = admin_client.get(job_url)
    [invalid] = [row for row in page.context["preview"].preview if row["errors"]]
    assert invalid["row"] == 4
    assert invalid["errors"] == [
        "row 4, Email: 'not-an-email' is not a valid e-mail address",
        "row 4, Lifecycle Stage → stage: 'Hot' is not a known lifecycle stage; expected one of "
        "lead, mql, sal, sql, opportunity, customer, nurture, disqualified, closed_lost",
        "row 4, Create Date → created_at: '02/30/2026 10:00' is not a valid date (expected "
        "%m/%d/%Y %H:%M)",
    ]
    assert "Would be rejected: 1 of 3 rows have problems" in page.content.decode()


def test_edit_the_mapping_then_commit_a_small_file_in_the_request(admin_client):
    job_url = upload(admin_client).url
    form = admin_client.get(job_url).context["form"]
    data = form_data(form)
    data["stage__values"] = "Subscriber = nurture"
    data["country__source"] = "constant"
    data["country__constant"] = "GB"
    response = admin_client.post(job_url, {**data, "action": "preview"})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.mapping["fields"]["country"] == {"constant": "GB"}
    data = form_data(admin_client.get(job_url).context["form"])
    response = admin_client.post(job_url, {**data, "action": "commit"})
    assert response.url == job_url
    job.refresh_from_db()
    assert (job.status, job.created_count, job.created_by.username) == ("done", 2, "ops")
    grace = Lead.objects.get(email="grace@example.com")
    assert (grace.stage, grace.country) == ("nurture", "GB")
    page = admin_client.get(job_url)
    assert b"2 rows: 2 created" in page.content
    assert page.context["progress"]["percent"] == 100


def test_a_large_file_runs_in_a_worker_with_progress(
    admin_client, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_SYNC_MAX_BYTES = 10  # everything is "large"
    job_url = upload(admin_client).url
    data = form_data(admin_client.get(job_url).context["form"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post(job_url, {**data, "action": "commit"})
    job = ImportJob.objects.get()
    assert job.status == "queued" and len(callbacks) == 1
    progress = admin_client.get(f"{job_url}progress.json").json()
    assert (progress["status"], progress["percent"], progress["finished"]) == ("queued", 0, False)
    callbacks[0]()  # the broker delivers; the test settings run tasks eagerly
    job.refresh_from_db()
    assert (job.status, job.created_count) == ("done", 2)
    progress = admin_client.get(f"{job_url}progress.json").json()
    assert (progress["percent"], progress["finished"], progress["processed"]) == (100, True, 2)
    assert not progress_path(job).exists()
    assert Lead.objects.count() == 2


def test_progress_of_a_running_import_comes_from_its_progress_file(admin_client):
    job = ImportJob.objects.get(pk=upload(admin_client).url.split("/")[-2])
    job.status = ImportJob.Status.RUNNING
    job.save()
    progress_path(job).parent.mkdir(parents=True, exist_ok=True)
    progress_path(job).write_text(json.dumps({"fraction": 0.42, "rows": 21000}))
    progress = admin_client.get(f"/leads/imports/{job.pk}/progress.json").json()
    assert (progress["percent"], progress["processed"], progress["status"]) == (
        42,
        21000,
        "running",
    )


def test_a_rejected_import_reports_every_problem_and_writes_nothing(admin_client):
    bad = CSV + "not-an-email,Eve,Nowhere,Webinar,MQL,03/30/2026 10:00\r\n"
    job_url = upload(admin_client, bad).url
    data = form_data(admin_client.get(job_url).context["form"])
    admin_client.post(job_url, {**data, "action": "commit"})
    job = ImportJob.objects.get()
    assert (job.status, job.error_count, job.created_count) == ("rejected", 1, 0)
    assert not Lead.objects.exists()
    page = admin_client.get(job_url)
    assert b"Rejected, nothing imported: 1 of 3 rows have problems" in page.content
    problems = b"".join(admin_client.get(f"{job_url}problems.csv").streaming_content).decode()
    assert "4,Email,email,not-an-email,is not a valid e-mail address" in problems


def test_an_accounts_file_with_a_huge_revenue_previews_its_row_error(admin_client):
    """1e30 in "annual revenue" raised decimal.InvalidOperation: the job's page was a 500 every
    time it was opened."""
    text = "Company,Website,Annual Revenue\r\nAcme,acme.example,1e30\r\nInitech,ini.example,5\r\n"
    job_url = upload(admin_client, text, kind="accounts").url
    page = admin_client.get(job_url)
    assert page.status_code == 200
    [bad, good] = page.context["preview"].preview
    assert bad["errors"] == ["row 2, Annual Revenue: '1e30' is too large (at most 14 digits)"]
    assert good["errors"] == []
    data = form_data(page.context["form"])
    admin_client.post(job_url, {**data, "action": "commit"})
    assert ImportJob.objects.get().status == "rejected"
    assert admin_client.get(job_url).status_code == 200


def test_skip_invalid_rows_from_the_page(admin_client):
    bad = CSV + "not-an-email,Eve,Nowhere,Webinar,MQL,03/30/2026 10:00\r\n"
    job_url = upload(admin_client, bad).url
    data = form_data(admin_client.get(job_url).context["form"])
    admin_client.post(job_url, {**data, "skip_invalid": "on", "action": "commit"})
    job = ImportJob.objects.get()
    assert (job.status, job.created_count, job.skipped_count) == ("done", 2, 1)
    assert job.report["errors"][0]["row"] == 4


def test_save_download_and_reuse_a_mapping(admin_client):
    job_url = upload(admin_client).url
    data = form_data(admin_client.get(job_url).context["form"])
    admin_client.post(job_url, {**data, "action": "save", "name": "HubSpot contacts"})
    saved = SavedMapping.objects.get()
    assert (saved.name, saved.kind) == ("HubSpot contacts", "leads")
    download = admin_client.get(f"/leads/imports/mappings/{saved.pk}.json")
    assert download["Content-Disposition"] == 'attachment; filename="leads-hubspot-contacts.json"'
    mapping = Mapping.from_json(download.content.decode())
    assert mapping.name == "HubSpot contacts" and mapping.specs["email"].column == "Email"
    # The next export from the same tool starts from the saved mapping.
    response = upload(admin_client, mapping=f"saved:{saved.pk}")
    job = ImportJob.objects.latest("pk")
    assert Mapping.from_json(job.mapping).name == "HubSpot contacts"
    job_json = admin_client.get(f"{response.url}mapping.json").json()
    assert job_json["format"] == "revops.import-mapping/1"


def test_replace_the_mapping_with_an_uploaded_file(admin_client):
    job_url = upload(admin_client).url
    mapping = {"kind": "leads", "fields": {"email": "Email", "source": {"constant": "Fair"}}}
    mapping_file = SimpleUploadedFile("m.json", json.dumps(mapping).encode())
    admin_client.post(job_url, {"action": "replace", "mapping_file": mapping_file})
    job = ImportJob.objects.get()
    assert job.mapping["fields"] == {"email": {"column": "Email"}, "source": {"constant": "Fair"}}
    wrong = SimpleUploadedFile("m.json", json.dumps({**mapping, "kind": "events"}).encode())
    page = admin_client.post(job_url, {"action": "replace", "mapping_file": wrong})
    assert "This mapping is for events, not leads." in page.content.decode()


def test_uploads_that_are_not_csv_or_too_large_are_refused(admin_client, settings):
    page = upload(admin_client, name="contacts.xlsx")
    assert "Upload a .csv / .txt / .tsv file." in page.content.decode()
    settings.IMPORT_MAX_UPLOAD_BYTES = 50
    page = upload(admin_client)
    assert "at most 50." in page.content.decode()
    assert not ImportJob.objects.exists()


def test_a_preset_for_another_kind_is_refused(admin_client):
    page = upload(admin_client, mapping="preset:maven-accounts")
    assert "is for accounts, not leads" in page.content.decode()


def test_index_lists_imports_saved_mappings_and_presets(admin_client):
    upload(admin_client)
    page = admin_client.get("/leads/imports/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "contacts.csv" in content and "Maven CRM: sales_pipeline.csv" in content
