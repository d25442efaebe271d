"""Content requests: sales files them from a handoff, marketing moves them on and closes them;
who may do what, what is refused, what the audit trail and the pages show."""

from datetime import UTC, datetime, timedelta

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from leads.models import ObjectionTag
from leads.roles import MARKETING, REVOPS_ADMIN, SALES_MANAGER, SALES_REP, VIEWER
from metrics import content_requests
from metrics.models import ContentRequest
from tests.factories import UserFactory
from tests.metrics.factories import ContentAssetFactory, HandoffFactory

pytestmark = pytest.mark.django_db

FILED_AT = datetime(2026, 3, 10, 15, tzinfo=UTC)


@pytest.fixture
def rep():
    return UserFactory(username="sam", first_name="Sam", last_name="Rep", role=SALES_REP)


@pytest.fixture
def marketer():
    return UserFactory(username="mia", first_name="Mia", last_name="Marketing", role=MARKETING)


@pytest.fixture
def handoff(rep):
    return HandoffFactory(stage="sql", assignee=rep)


@pytest.fixture
def price():
    return ObjectionTag.objects.get_or_create(key="price", defaults={"label": "Price"})[0]


def file(handoff, user, title="ROI calculator for hospitals", **kwargs):
    return content_requests.content_request_file(
        handoff=handoff, requested_by=user, title=title, now=FILED_AT, **kwargs
    )


# --- Filing ------------------------------------------------------------------------------------


def test_a_rep_files_a_request_for_the_handoffs_stage_and_objection(handoff, rep, price):
    request = file(handoff, rep, title="  ROI   calculator ", objection=price, note="CFO asked")

    request.refresh_from_db()
    assert request.title == "ROI calculator"
    assert request.stage == "sql"
    assert request.objection == price
    assert request.requested_by == rep
    assert request.status == ContentRequest.Status.OPEN
    assert request.created_at == FILED_AT


def test_filing_is_in_the_audit_trail_with_who_did_it(handoff, rep):
    request = file(handoff, rep)

    entry = LogEntry.objects.get_for_object(request).get()
    assert entry.actor == rep
    assert entry.additional_data["event"] == content_requests.FILED
    assert "ROI calculator for hospitals" in entry.additional_data["summary"]


def test_a_request_without_a_title_is_refused(handoff, rep):
    with pytest.raises(ValidationError) as refused:
        file(handoff, rep, title="   ")
    assert "Say what content is wanted." in refused.value.message_dict["title"]
    assert not ContentRequest.objects.exists()


def test_the_same_open_request_twice_on_a_handoff_is_refused(handoff, rep):
    file(handoff, rep, title="ROI calculator")
    with pytest.raises(ValidationError) as refused:
        file(handoff, rep, title="roi CALCULATOR")
    assert "already has an open request" in str(refused.value)
    assert ContentRequest.objects.count() == 1


def test_an_inactive_objection_is_refused(handoff, rep):
    retired = ObjectionTag.objects.create(key="retired", label="Retired", is_active=False)
    with pytest.raises(ValidationError) as refused:
        file(handoff, rep, objection=retired)
    assert "No longer in use: Retired" in str(refused.value)


@pytest.mark.parametrize("role", [MARKETING, VIEWER, REVOPS_ADMIN])
def test_only_sales_files_requests(handoff, role):
    with pytest.raises(PermissionDenied):
        file(handoff, UserFactory(role=role))
    assert not ContentRequest.objects.exists()


# --- Moving on and closing ---------------------------------------------------------------------


def test_marketing_closes_a_request_as_done_with_the_asset(handoff, rep, marketer):
    request = file(handoff, rep)
    asset = ContentAssetFactory(title="Hospital ROI calculator")
    closed_at = FILED_AT + timedelta(days=2)

    closed = content_requests.content_request_update(
        request=request, actor=marketer, status="done", fulfilled_by=asset, now=closed_at
    )

    closed.refresh_from_db()
    assert (closed.status, closed.fulfilled_by, closed.closed_by, closed.closed_at) == (
        "done",
        asset,
        marketer,
        closed_at,
    )
    entry = LogEntry.objects.get_for_object(closed).latest("timestamp")
    assert entry.actor == marketer
    assert entry.additional_data["event"] == content_requests.CLOSED
    assert entry.changes_dict["status"] == ["open", "done"]


def test_done_needs_the_asset_and_declined_needs_a_reason(handoff, rep, marketer):
    request = file(handoff, rep)
    with pytest.raises(ValidationError) as no_asset:
        content_requests.content_request_update(request=request, actor=marketer, status="done")
    assert "Pick the asset" in str(no_asset.value)
    with pytest.raises(ValidationError) as no_reason:
        content_requests.content_request_update(
            request=request, actor=marketer, status="declined", close_note="  "
        )
    assert "Say why it is declined" in str(no_reason.value)
    request.refresh_from_db()
    assert request.status == "open" and request.closed_at is None


def test_in_progress_then_declined(handoff, rep, marketer):
    request = file(handoff, rep)
    started = content_requests.content_request_update(
        request=request, actor=marketer, status="in_progress"
    )
    assert started.status == "in_progress" and started.closed_at is None
    declined = content_requests.content_request_update(
        request=request, actor=marketer, status="declined", close_note="The pricing page has it"
    )
    assert declined.status == "declined" and declined.close_note == "The pricing page has it"
    assert declined.fulfilled_by is None and declined.closed_by == marketer


def test_a_closed_request_stays_closed(handoff, rep, marketer):
    request = file(handoff, rep)
    content_requests.content_request_update(
        request=request, actor=marketer, status="declined", close_note="Exists already"
    )
    with pytest.raises(ValidationError) as refused:
        content_requests.content_request_update(
            request=request, actor=marketer, status="done", fulfilled_by=ContentAssetFactory()
        )
    assert "already declined" in str(refused.value)
    request.refresh_from_db()
    assert request.status == "declined" and request.fulfilled_by is None


def test_a_closed_request_frees_its_title_for_a_new_one(handoff, rep, marketer):
    first = file(handoff, rep, title="ROI calculator")
    content_requests.content_request_update(
        request=first, actor=marketer, status="declined", close_note="Not now"
    )
    again = file(handoff, rep, title="ROI calculator")
    assert again.pk != first.pk


@pytest.mark.parametrize("role", [SALES_REP, SALES_MANAGER, VIEWER])
def test_only_marketing_and_revops_close_requests(handoff, rep, role):
    request = file(handoff, rep)
    with pytest.raises(PermissionDenied):
        content_requests.content_request_update(
            request=request, actor=UserFactory(role=role), status="in_progress"
        )
    request.refresh_from_db()
    assert request.status == "open"


def test_a_revops_admin_may_close(handoff, rep):
    request = file(handoff, rep)
    admin = UserFactory(role=REVOPS_ADMIN)
    closed = content_requests.content_request_update(
        request=request, actor=admin, status="declined", close_note="Duplicate"
    )
    assert closed.closed_by == admin


# --- The list ------------------------------------------------------------------------------------


def test_the_list_shows_waiting_requests_first_oldest_first(handoff, rep, marketer):
    old = file(handoff, rep, title="Old one")
    new = content_requests.content_request_file(
        handoff=handoff, requested_by=rep, title="New one", now=FILED_AT + timedelta(days=1)
    )
    closed = file(handoff, rep, title="Closed one")
    content_requests.content_request_update(
        request=closed, actor=marketer, status="declined", close_note="No"
    )

    assert list(content_requests.content_request_list()) == [old, new, closed]
    assert list(content_requests.content_request_list(status="open")) == [old, new]
    assert list(content_requests.content_request_list(status="declined")) == [closed]


# --- Pages ---------------------------------------------------------------------------------------


def test_a_rep_files_from_the_handoff_page_and_sees_it_there(client, handoff, rep, price):
    client.force_login(rep)
    page = client.get(reverse("leads:handoff", args=[handoff.pk]))
    assert b'id="content-request"' in page.content

    response = client.post(
        reverse("metrics:content_request_file", args=[handoff.pk]),
        {"title": "Security whitepaper", "objection": price.pk, "note": "IT asked"},
    )

    assert response.status_code == 302
    assert response["Location"].endswith(f"/leads/handoffs/{handoff.pk}/#content-requests")
    request = ContentRequest.objects.get()
    assert (request.title, request.objection, request.requested_by) == (
        "Security whitepaper",
        price,
        rep,
    )
    page = client.get(reverse("leads:handoff", args=[handoff.pk]))
    assert "Security whitepaper" in page.content.decode()


def test_an_empty_request_from_the_handoff_page_says_why(client, handoff, rep):
    client.force_login(rep)
    response = client.post(
        reverse("metrics:content_request_file", args=[handoff.pk]), {"title": " "}
    )
    assert response.status_code == 400
    assert "Say what content is wanted." in response.content.decode()
    assert not ContentRequest.objects.exists()


def test_marketing_sees_no_filing_form_on_the_handoff_page(client, handoff, marketer):
    client.force_login(marketer)
    page = client.get(reverse("leads:handoff", args=[handoff.pk]))
    assert page.status_code == 200
    assert b'id="content-request"' not in page.content
    assert reverse("metrics:content_requests").encode() in page.content


@pytest.mark.parametrize("role", [MARKETING, VIEWER, REVOPS_ADMIN])
def test_filing_from_the_page_is_forbidden_outside_sales(client, handoff, role):
    client.force_login(UserFactory(role=role))
    response = client.post(
        reverse("metrics:content_request_file", args=[handoff.pk]), {"title": "Anything"}
    )
    assert response.status_code == 403
    assert not ContentRequest.objects.exists()


@pytest.mark.parametrize("role", [SALES_REP, SALES_MANAGER, VIEWER])
def test_the_list_and_closing_are_forbidden_outside_marketing_and_revops(
    client, handoff, rep, role
):
    request = file(handoff, rep)
    client.force_login(UserFactory(role=role))
    assert client.get(reverse("metrics:content_requests")).status_code == 403
    response = client.post(
        reverse("metrics:content_request_update", args=[request.pk]), {"status": "in_progress"}
    )
    assert response.status_code == 403
    request.refresh_from_db()
    assert request.status == "open"


def test_the_list_page_filters_by_status_and_pages(client, handoff, rep, marketer):
    for number in range(30):
        content_requests.content_request_file(
            handoff=handoff,
            requested_by=rep,
            title=f"Request {number:02}",
            now=FILED_AT + timedelta(minutes=number),
        )
    client.force_login(marketer)
    first = client.get(reverse("metrics:content_requests"))
    assert first.status_code == 200
    assert len(first.context["page"].object_list) == 25
    assert "Request 00" in first.content.decode()
    second = client.get(reverse("metrics:content_requests"), {"page": 2})
    assert [row.title for row in second.context["page"].object_list] == [
        f"Request {number}" for number in range(25, 30)
    ]
    done = client.get(reverse("metrics:content_requests"), {"status": "done"})
    assert "No request here." in done.content.decode()


def test_the_list_page_has_an_empty_state(client, marketer):
    client.force_login(marketer)
    page = client.get(reverse("metrics:content_requests"))
    assert "No open content request." in page.content.decode()


def test_closing_from_the_list_keeps_its_filters(client, handoff, rep, marketer):
    request = file(handoff, rep)
    asset = ContentAssetFactory(title="Security whitepaper")
    client.force_login(marketer)
    response = client.post(
        reverse("metrics:content_request_update", args=[request.pk]),
        {"status": "done", "fulfilled_by": asset.pk, "back": "status=open"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("metrics:content_requests") + "?status=open"
    request.refresh_from_db()
    assert (request.status, request.fulfilled_by) == ("done", asset)


def test_closing_from_the_list_carries_back_only_its_filter_and_page(
    client, handoff, rep, marketer
):
    request = file(handoff, rep)
    client.force_login(marketer)
    response = client.post(
        reverse("metrics:content_request_update", args=[request.pk]),
        {"status": "in_progress", "back": "page=2&next=//evil.example\r\nX: 1&status=open"},
    )
    assert response["Location"] == reverse("metrics:content_requests") + "?status=open&page=2"
    request.refresh_from_db()
    assert request.status == "in_progress"


def test_a_refused_close_from_the_list_says_why_and_changes_nothing(client, handoff, rep, marketer):
    request = file(handoff, rep)
    client.force_login(marketer)
    response = client.post(
        reverse("metrics:content_request_update", args=[request.pk]),
        {"status": "declined", "close_note": ""},
        follow=True,
    )
    assert "Say why it is declined" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "open"


def test_the_content_dashboard_links_to_the_requests(client, marketer):
    client.force_login(marketer)
    page = client.get(reverse("metrics:content"))
    assert reverse("metrics:content_requests").encode() in page.content
