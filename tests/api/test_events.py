"""Bulk engagement events: up to 1,000 per request, idempotent on (source system, external id),
all or nothing by default, every problem named with the item's index and field."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from leads.models import EngagementEvent
from leads.services.pipeline import INGEST_CHUNK
from scoring.models import LeadScoreState
from tests.api.conftest import errors_of, grant, token_client
from tests.factories import EventFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/events/"
WHEN = "2026-03-02T15:00:00Z"


@pytest.fixture
def sender(db):
    """An integration user allowed to record events (and nothing else)."""
    return token_client(grant(UserFactory(username="hubspot.sync"), "leads.add_engagementevent"))


def event(lead, n: int, **overrides) -> dict:
    return {
        "lead": lead.pk,
        "kind": "page_view",
        "occurred_at": WHEN,
        "source_system": "hubspot",
        "external_id": f"evt-{n}",
        "properties": {"url": "/pricing"},
        **overrides,
    }


def test_a_batch_is_stored_and_its_leads_marked_for_rescoring(sender):
    leads = LeadFactory.create_batch(3)
    batch = [event(lead, n) for n, lead in enumerate(leads)]
    response = sender.post(URL, batch, format="json")
    assert response.status_code == 201
    assert response.json() == {
        "received": 3,
        "created": 3,
        "duplicate_count": 0,
        "invalid_count": 0,
        "duplicates": [],
        "errors": [],
    }
    stored = EngagementEvent.objects.order_by("external_id")
    assert [e.lead_id for e in stored] == [lead.pk for lead in leads]
    assert stored[0].occurred_at == datetime(2026, 3, 2, 15, tzinfo=UTC)
    assert stored[0].properties == {"url": "/pricing"}
    # Scoring learns about the leads in the same transaction (dirty flags), not later.
    dirty = LeadScoreState.objects.filter(pending_seq__gt=0).values_list("lead_id", flat=True)
    assert set(dirty) == {lead.pk for lead in leads}


def test_an_object_with_an_events_list_is_accepted_too(sender):
    lead = LeadFactory()
    response = sender.post(URL, {"events": [event(lead, 1)]}, format="json")
    assert response.status_code == 201
    assert response.json()["created"] == 1


def test_re_sending_the_same_batch_creates_nothing_and_names_the_duplicates(sender):
    lead = LeadFactory()
    batch = [event(lead, n) for n in range(5)]
    assert sender.post(URL, batch, format="json").status_code == 201
    again = sender.post(URL, batch, format="json")
    assert again.status_code == 200
    body = again.json()
    assert (body["created"], body["duplicate_count"]) == (0, 5)
    assert body["duplicates"][2] == {"index": 2, "source_system": "hubspot", "external_id": "evt-2"}
    assert EngagementEvent.objects.count() == 5


def test_a_partly_new_batch_stores_only_the_new_events(sender):
    lead = LeadFactory()
    sender.post(URL, [event(lead, 1)], format="json")
    body = sender.post(URL, [event(lead, 1), event(lead, 2)], format="json").json()
    assert (body["created"], body["duplicate_count"]) == (1, 1)
    assert body["duplicates"] == [{"index": 0, "source_system": "hubspot", "external_id": "evt-1"}]
    assert EngagementEvent.objects.count() == 2


def test_the_same_event_twice_in_one_batch_is_stored_once(sender):
    lead = LeadFactory()
    body = sender.post(URL, [event(lead, 1), event(lead, 1)], format="json").json()
    assert (body["created"], body["duplicate_count"]) == (1, 1)
    assert body["duplicates"][0]["index"] == 1


def test_the_same_external_id_from_another_system_is_another_event(sender):
    lead = LeadFactory()
    batch = [event(lead, 1), event(lead, 1, source_system="web")]
    assert sender.post(URL, batch, format="json").json()["created"] == 2


def test_leads_are_named_by_id_external_id_or_email(sender):
    by_id = LeadFactory()
    by_external = LeadFactory(external_id="crm-42")
    by_email = LeadFactory(email="ada@example.com")
    batch = [
        event(by_id, 1),
        {**event(by_external, 2), "lead": None, "lead_external_id": "crm-42"},
        {k: v for k, v in event(by_email, 3).items() if k != "lead"}
        | {"lead_email": "ADA@example.com"},
    ]
    assert sender.post(URL, batch, format="json").status_code == 201
    owners = dict(EngagementEvent.objects.values_list("external_id", "lead_id"))
    assert owners == {"evt-1": by_id.pk, "evt-2": by_external.pk, "evt-3": by_email.pk}


def test_one_invalid_event_refuses_the_whole_batch(sender):
    lead = LeadFactory()
    batch = [event(lead, n) for n in range(10)]
    batch[7]["kind"] = "telepathy"
    response = sender.post(URL, batch, format="json")
    assert response.status_code == 400
    [entry] = errors_of(response)
    assert entry["index"] == 7
    assert entry["field"] == "kind"
    assert entry["code"] == "invalid_choice"
    assert "'telepathy' is not a known event kind" in entry["message"]
    assert EngagementEvent.objects.count() == 0


@pytest.mark.parametrize("kind", [{}, ["page_view"], 7])
def test_a_kind_that_is_not_a_string_is_a_field_error(sender, kind):
    """An object as the kind was a TypeError (unhashable) and a 500 (found by schemathesis)."""
    response = sender.post(URL, [event(LeadFactory(), 1, kind=kind)], format="json")
    assert response.status_code == 400
    [entry] = errors_of(response)
    assert (entry["index"], entry["field"], entry["code"]) == (0, "kind", "invalid_choice")


def test_every_problem_is_reported_with_its_index_and_field(sender):
    lead = LeadFactory()
    future = (timezone.now() + timedelta(days=2)).isoformat()
    batch = [
        event(lead, 0, occurred_at="2026-02-30T10:00:00Z"),  # impossible date
        event(lead, 1, occurred_at="yesterday"),
        event(lead, 2, occurred_at=future),
        {**event(lead, 3), "lead": "12"},  # wrong type
        {**event(lead, 4), "lead": 999_999},  # unknown lead
        event(lead, 5, external_id=""),
        event(lead, 6, properties=["not", "an", "object"]),
        event(lead, 7, occured_at=WHEN),  # a typo is an unknown field
        event(lead, 8, source_system="x" * 41),
        "not an object",
        {**event(lead, 10), "lead_email": "a@example.com"},  # two ways to name the lead
        event(lead, 11, content_asset=999_999),
        event(lead, 12, kind=None),
        event(lead, 13),  # valid
        event(lead, 14, occurred_at="0001-01-01T00:00:00+05:00"),
    ]
    response = sender.post(URL, batch, format="json")
    assert response.status_code == 400
    found = {(e["index"], e["field"]): e for e in errors_of(response)}
    assert set(found) == {
        (0, "occurred_at"),
        (1, "occurred_at"),
        (2, "occurred_at"),
        (3, "lead"),
        (4, "lead"),
        (5, "external_id"),
        (6, "properties"),
        (7, "occured_at"),
        (8, "source_system"),
        (9, None),
        (10, "lead"),
        (11, "content_asset"),
        (12, "kind"),
        (14, "occurred_at"),
    }
    assert "day is out of range for month" in found[(0, "occurred_at")]["message"]
    assert found[(2, "occurred_at")]["code"] == "future"
    assert found[(4, "lead")]["code"] == "does_not_exist"
    assert found[(8, "source_system")]["code"] == "max_length"
    assert found[(12, "kind")]["code"] == "required"
    assert EngagementEvent.objects.count() == 0


def test_skip_invalid_stores_the_valid_events_and_reports_the_others(sender):
    lead = LeadFactory()
    batch = [event(lead, 1), event(lead, 2, kind="nope"), event(lead, 3)]
    response = sender.post(f"{URL}?skip_invalid=true", batch, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["invalid_count"]) == (2, 1)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "kind")]
    assert set(EngagementEvent.objects.values_list("external_id", flat=True)) == {"evt-1", "evt-3"}


def test_more_than_1000_events_is_413_and_writes_nothing(sender):
    lead = LeadFactory()
    response = sender.post(URL, [event(lead, n) for n in range(1001)], format="json")
    assert response.status_code == 413
    [entry] = errors_of(response)
    assert entry["message"].startswith("At most 1,000 events per request; this one has 1,001.")
    assert EngagementEvent.objects.count() == 0


def test_exactly_1000_events_are_fine(sender, django_assert_max_num_queries):
    leads = LeadFactory.create_batch(20)
    batch = [event(leads[n % 20], n) for n in range(1000)]
    # Validation and the lead lookup once, then per chunk of 100: duplicates, insert, stage
    # triggers, scoring's dirty flags. Never a query per event.
    per_chunk = 11 if connection.vendor == "postgresql" else 18  # SQLite splits 1,000-row inserts
    with django_assert_max_num_queries(6 + per_chunk * 1000 // INGEST_CHUNK):
        response = sender.post(URL, batch, format="json")
    assert response.status_code == 201
    assert EngagementEvent.objects.count() == 1000


@pytest.mark.parametrize(
    "body, message",
    [
        ([], "The batch is empty"),
        ({"event": []}, "Send the events as a JSON list"),
        ({"events": [], "extra": 1}, "Send the events as a JSON list"),
        ("a string", "Send the events as a JSON list"),
    ],
)
def test_a_body_of_the_wrong_shape_is_400(sender, body, message):
    response = sender.post(URL, body, format="json")
    assert response.status_code == 400
    assert errors_of(response)[0]["message"].startswith(message)


def test_recording_events_needs_the_permission(reader_api):
    lead = LeadFactory()
    response = reader_api.post(URL, [event(lead, 1)], format="json")
    assert response.status_code == 403
    assert "leads.add_engagementevent" in errors_of(response)[0]["message"]
    assert EngagementEvent.objects.count() == 0


def test_events_are_listed_newest_first_and_filtered(reader_api):
    lead = LeadFactory()
    first = EventFactory(lead=lead, kind="page_view", source_system="web", external_id="a")
    second = EventFactory(lead=lead, kind="form_fill")
    EventFactory(kind="form_fill")
    response = reader_api.get(URL, {"lead": lead.pk})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert [row["id"] for row in body["results"]] == [second.pk, first.pk]
    assert body["results"][1] == {
        "id": first.pk,
        "lead": lead.pk,
        "kind": "page_view",
        "occurred_at": "2026-03-02T15:00:00Z",
        "properties": {},
        "content_asset": None,
        "source_system": "web",
        "external_id": "a",
        "received_at": body["results"][1]["received_at"],
    }
    kinds = reader_api.get(URL, {"kind": "form_fill"}).json()["results"]
    assert len(kinds) == 2
    assert reader_api.get(f"{URL}{first.pk}/").json()["external_id"] == "a"


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite's in-memory test database has one writer"
)
# Serialized rollback: the migrations' rows (definitions, content types) are put back after
# the flush, as the other transactional tests of the suite expect.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_batch_sent_twice_at_once_is_stored_once():
    """A client that retries before its first request finished: whichever request stores the
    events first, the other finds them as duplicates (on PostgreSQL it meets the first one's
    rows in the unique index, and retries)."""
    from threading import Barrier, Thread

    from django.db import connections

    lead = LeadFactory()
    user = grant(UserFactory(username="twice"), "leads.add_engagementevent")
    batch = [event(lead, n) for n in range(300)]
    barrier = Barrier(2)
    answers = []

    def send():
        client = token_client(user)
        barrier.wait()
        answers.append(client.post(URL, batch, format="json"))
        connections.close_all()

    threads = [Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [200, 201]
    assert sorted(answer.json()["created"] for answer in answers) == [0, 300]
    assert EngagementEvent.objects.count() == 300
