"""The OpenAPI schema is a contract client generators and fuzzers can build on (issue 16, item
5): every reference resolves, what the API answers null is nullable, and every operation
documents the error answers it can give (``revops.api_schema``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def references(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def test_every_reference_names_a_component_the_schema_defines(schema):
    defined = {f"#/components/schemas/{name}" for name in schema["components"]["schemas"]}
    assert set(references(schema)) - defined == set()


def test_the_event_batch_body_is_a_list_of_events_or_an_object_holding_one(schema):
    body = schema["paths"]["/api/v1/events/"]["post"]["requestBody"]["content"]
    batch = schema["components"]["schemas"]["EventBatchRequest"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/EventBatchRequest"}
    as_list, as_object = batch["oneOf"]
    event = {"$ref": "#/components/schemas/EngagementEventInRequest"}
    assert (as_list["type"], as_list["items"], as_list["maxItems"]) == ("array", event, 1000)
    assert as_object["properties"]["events"] == as_list
    assert {"kind", "occurred_at", "source_system", "external_id"} <= set(
        schema["components"]["schemas"]["EngagementEventInRequest"]["required"]
    )


def test_a_leads_tier_and_a_reps_tiers_are_one_enum(schema):
    """Two names for one choice set (TierEnum, TiersEnum) made the production check warn."""
    schemas = schema["components"]["schemas"]
    enums = [name for name, component in schemas.items() if component.get("enum") == list("ABCD")]
    assert enums == ["FitTierEnum"]
    assert schemas["SalesRep"]["properties"]["tiers"]["items"] == {
        "$ref": "#/components/schemas/FitTierEnum"
    }


def test_a_handoffs_reject_reason_is_nullable(schema):
    assert schema["components"]["schemas"]["Handoff"]["properties"]["reject_reason"]["nullable"]


def test_every_operation_documents_its_error_answers(schema):
    missing = []
    for path, method, operation in operations(schema):
        expected = {"401", "403"}
        parameters = operation.get("parameters", [])
        if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
            expected.add("400")
        if any(p["in"] == "path" for p in parameters):
            expected.add("404")
        if parameters:
            expected.add("414")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        if absent := expected - set(operation["responses"]):
            missing.append(f"{method.upper()} {path}: {sorted(absent)}")
    assert missing == []


def test_an_error_answer_has_the_apis_error_format(schema):
    lead = schema["paths"]["/api/v1/leads/{id}/"]["get"]["responses"]["404"]
    assert lead["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Errors"}
    listing = schema["paths"]["/api/v1/leads/"]["get"]["responses"]
    assert {"200", "400", "401", "403", "414"} == set(listing)  # no 404, no 413 without a body


def test_the_production_schema_generates_without_a_warning():
    """What ``/api/v1/schema/`` serves under the production settings, checked as CI would."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SECRET_KEY"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "revops.settings.production",
        "SECRET_KEY": "x" * 20 + "-production-secret-of-sufficient-length-42",
        "DJANGO_ALLOWED_HOSTS": "revops.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1/revops"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file",
         os.devnull],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
