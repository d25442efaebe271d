"""One error format for every 4xx, and precise messages for malformed input: nothing is ever
partly written."""

import json

import pytest

from leads.api.common import MAX_BODY_BYTES
from leads.models import EngagementEvent, Lead
from revops.api_errors import flatten
from tests.api.conftest import errors_of

pytestmark = pytest.mark.django_db


def post_raw(client, url: str, body: bytes | str, content_type: str = "application/json"):
    return client.generic("POST", url, body, content_type=content_type)


@pytest.mark.parametrize(
    "body, message",
    [
        ("{", "JSON parse error - Expecting property name enclosed in double quotes"),
        ('[{"kind": "page_view",}]', "JSON parse error - Expecting property name"),
        ('{"a": NaN}', "JSON parse error - NaN is not valid JSON"),
        (b"\xff\xfe{}", "JSON parse error - 'utf-8' codec can't decode byte 0xff"),
        ('[{"external_id": "a\\u0000b"}]', "text cannot contain NUL characters"),
        ('[{"external_id": "\\ud800"}]', "unpaired surrogate"),
    ],
)
def test_malformed_json_is_400_with_the_parsers_reason(ops_api, body, message):
    response = post_raw(ops_api, "/api/v1/events/", body)
    assert response.status_code == 400
    [entry] = errors_of(response)
    assert entry["code"] == "parse_error"
    assert entry["field"] is None
    assert message in entry["message"]
    assert EngagementEvent.objects.count() == 0


def test_an_escaped_backslash_before_u0000_is_just_text(ops_api):
    response = post_raw(ops_api, "/api/v1/sources/", '{"name": "a\\\\u0000", "channel_group": "x"}')
    assert response.status_code == 400
    assert errors_of(response)[0]["field"] == "channel_group"  # parsed fine, then validated


def test_a_body_that_is_not_json_is_415(ops_api):
    response = post_raw(
        ops_api, "/api/v1/leads/", "email=a@b.c", "application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert errors_of(response)[0]["code"] == "unsupported_media_type"


def test_an_oversize_body_is_413_before_it_is_read(ops_api):
    body = json.dumps([{"external_id": "x" * 1000}] * (MAX_BODY_BYTES // 1000))
    response = post_raw(ops_api, "/api/v1/events/", body)
    assert response.status_code == 413
    [entry] = errors_of(response)
    assert entry["code"] == "too_large"
    assert f"{MAX_BODY_BYTES:,} bytes" in entry["message"]


def test_an_empty_body_is_400(ops_api):
    response = post_raw(ops_api, "/api/v1/events/", "")
    assert response.status_code == 400
    assert errors_of(response)[0]["message"].startswith("Send the events as a JSON list")


@pytest.mark.parametrize(
    "path", ["/api/v1/accounts/a%0Ab/", "/api/v1/nowhere%0A", "/api/v1/leads/%C2%84/"]
)
def test_any_unknown_path_under_the_api_is_its_json_404(ops_api, path):
    """A newline in the path slipped past the catch-all route ("." misses it): Django's HTML
    page answered instead of the API's JSON (found by schemathesis)."""
    response = ops_api.get(path)
    assert response.status_code == 404
    assert errors_of(response)[0]["code"] == "not_found"


def test_a_method_not_offered_is_405(ops_api):
    response = ops_api.put("/api/v1/events/", [], format="json")
    assert response.status_code == 405
    assert errors_of(response)[0]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "body, field, code",
    [
        ({"employees": "many"}, "employees", "invalid"),
        ({"employees": 10**30}, "employees", "max_value"),
        ({"technologies": ["ok", {"a": 2}]}, "technologies[1]", "invalid"),
        ({"name": None}, "name", "null"),
    ],
)
def test_wrong_types_name_the_field(ops_api, body, field, code):
    response = ops_api.post("/api/v1/accounts/", {"name": "A", **body}, format="json")
    assert response.status_code == 400
    entries = {(e["field"], e["code"]) for e in errors_of(response)}
    assert (field, code) in entries


def test_a_refused_write_leaves_nothing_behind(ops_api):
    response = ops_api.post(
        "/api/v1/leads/", {"email": "ok@example.com", "seniority": "emperor"}, format="json"
    )
    assert response.status_code == 400
    assert Lead.objects.count() == 0


def test_the_error_tree_flattens_to_paths_and_indexes():
    detail = {
        "email": ["Enter a valid email address."],
        "non_field_errors": ["Both cannot be set."],
        "criteria": {2: {"points": ["Too many."]}},
    }
    assert flatten(detail) == [
        {"field": "email", "code": "invalid", "message": "Enter a valid email address."},
        {"field": None, "code": "invalid", "message": "Both cannot be set."},
        {"field": "criteria[2].points", "code": "invalid", "message": "Too many."},
    ]
    assert flatten([{}, {"kind": ["Bad."]}]) == [
        {"index": 1, "field": "kind", "code": "invalid", "message": "Bad."}
    ]
