"""One rule for instants from outside (``revops.datetimes``): an offset PostgreSQL cannot store
(beyond ±15:59, though Python reads up to ±23:59) is refused with a message naming the field or
parameter, in API bodies, API filters and CSV imports alike, never a 500 (issue 16, item 1)."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from revops.datetimes import InstantError, parse_instant, to_utc
from tests.api.conftest import errors_of, fields_of, token_client
from tests.factories import LeadFactory

NEW_YORK = ZoneInfo("America/New_York")


# --- The parser (no database) -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-02T15:00:00Z", datetime(2026, 3, 2, 15, tzinfo=UTC)),
        ("2026-03-02T10:00:00-05:00", datetime(2026, 3, 2, 15, tzinfo=UTC)),
        ("2026-03-02T15:00:00+15:59", datetime(2026, 3, 1, 23, 1, tzinfo=UTC)),
        ("2026-03-02T15:00:00-15:59", datetime(2026, 3, 3, 6, 59, tzinfo=UTC)),
        ("2026-03-02 15:00", datetime(2026, 3, 2, 15, tzinfo=UTC)),
        ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),
    ],
)
def test_an_instant_is_read_into_utc(text, expected):
    value = parse_instant(text)
    assert value == expected
    assert value.utcoffset() == timedelta(0)


def test_a_value_without_offset_is_read_in_the_zone_given():
    assert parse_instant("2026-07-01T09:00", zone=NEW_YORK) == datetime(2026, 7, 1, 13, tzinfo=UTC)


@pytest.mark.parametrize("offset", ["+16:00", "-16:00", "+22:45", "+23:59", "-23:59:59"])
def test_an_offset_postgresql_cannot_store_is_refused(offset):
    with pytest.raises(InstantError) as refused:
        parse_instant(f"2026-12-01T10:00:00{offset}")
    assert refused.value.code == "offset_out_of_range"
    assert offset[:6] in refused.value.message
    assert "-15:59 to +15:59" in refused.value.message


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=2))),  # year 0 in UTC
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),  # year 10000 in UTC
    ],
)
def test_an_instant_outside_the_calendar_in_utc_is_refused(value):
    with pytest.raises(InstantError) as refused:
        to_utc(value)
    assert refused.value.code == "out_of_range"


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-02-30T10:00", "2026-03-02T25:00", "\x00"])
def test_text_that_is_no_instant_is_refused_with_an_example(text):
    with pytest.raises(InstantError) as refused:
        parse_instant(text)
    assert "2026-03-02T15:00:00Z" in refused.value.message


# --- API filters --------------------------------------------------------------------------------


@pytest.fixture
def ops_api(admin_user):
    return token_client(admin_user)


FILTERS = [
    ("/api/v1/leads/", "created_before"),
    ("/api/v1/leads/", "created_after"),
    ("/api/v1/opportunities/", "created_before"),
    ("/api/v1/opportunities/", "closed_after"),
    ("/api/v1/events/", "occurred_after"),
    ("/api/v1/events/", "occurred_before"),
    ("/api/v1/handoffs/", "assigned_after"),
    ("/api/v1/handoffs/", "assigned_before"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("url, parameter", FILTERS)
def test_a_filter_with_an_offset_postgresql_cannot_store_is_a_400_naming_it(
    ops_api, url, parameter
):
    response = ops_api.get(f"{url}?{parameter}=2026-01-01T00:00:00%2B22:45")
    assert response.status_code == 400
    assert fields_of(response) == {parameter}
    assert "+22:45" in errors_of(response)[0]["message"]


@pytest.mark.django_db
def test_a_filter_with_a_real_offset_still_filters(ops_api):
    lead = LeadFactory(created_at=datetime(2026, 1, 1, 12, tzinfo=UTC))
    listed = ops_api.get("/api/v1/leads/?created_after=2026-01-01T13:30:00%2B14:00")
    assert [row["id"] for row in listed.json()["results"]] == [lead.pk]
    listed = ops_api.get("/api/v1/leads/?created_after=2026-01-01T09:30:00-12:00")
    assert listed.json()["results"] == []


# --- API bodies ---------------------------------------------------------------------------------


def event(lead, n: int, occurred_at: str) -> dict:
    return {
        "lead": lead.pk,
        "kind": "page_view",
        "occurred_at": occurred_at,
        "source_system": "hubspot",
        "external_id": f"evt-{n}",
    }


@pytest.mark.django_db
def test_an_event_with_an_offset_postgresql_cannot_store_is_a_400_naming_it(ops_api):
    from leads.models import EngagementEvent

    lead = LeadFactory()
    batch = [event(lead, 0, "2026-01-01T10:00:00Z"), event(lead, 1, "2026-12-01T10:00:00+16:00")]
    response = ops_api.post("/api/v1/events/", batch, format="json")
    assert response.status_code == 400
    [problem] = errors_of(response)
    assert (problem["index"], problem["field"], problem["code"]) == (
        1,
        "occurred_at",
        "offset_out_of_range",
    )
    assert "+16:00" in problem["message"]
    assert not EngagementEvent.objects.exists()


@pytest.mark.django_db
def test_skip_invalid_skips_only_the_event_with_the_offset(ops_api):
    from leads.models import EngagementEvent

    lead = LeadFactory()
    batch = [
        event(lead, 0, "2026-01-01T10:00:00+14:00"),
        event(lead, 1, "2026-01-01T10:00:00-23:59"),
        event(lead, 2, "2026-01-01T10:00:00Z"),
    ]
    response = ops_api.post("/api/v1/events/?skip_invalid=true", batch, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["invalid_count"]) == (2, 1)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "occurred_at")]
    stored = EngagementEvent.objects.order_by("external_id").values_list("occurred_at", flat=True)
    assert list(stored) == [
        datetime(2025, 12, 31, 20, tzinfo=UTC),
        datetime(2026, 1, 1, 10, tzinfo=UTC),
    ]


@pytest.mark.django_db
def test_a_body_field_with_an_offset_postgresql_cannot_store_is_a_400_naming_it(ops_api):
    lead = LeadFactory()
    response = ops_api.patch(
        f"/api/v1/leads/{lead.pk}/", {"created_at": "2026-01-01T00:00:00+22:45"}, format="json"
    )
    assert response.status_code == 400
    assert fields_of(response) == {"created_at"}
    assert errors_of(response)[0]["code"] == "offset_out_of_range"
    created = ops_api.patch(
        f"/api/v1/leads/{lead.pk}/", {"created_at": "2026-01-01T00:00:00+05:30"}, format="json"
    )
    assert created.json()["created_at"] == "2025-12-31T18:30:00Z"
