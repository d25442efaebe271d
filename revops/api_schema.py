"""What the OpenAPI schema says beyond each view (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``):
the error answers of every operation, and links from a created row to its operations.

Every 4xx of the API has one format (``revops.api_errors``), and which of them an operation can
answer follows from its shape, not from each view: any call may be unauthenticated (401) or not
allowed (403); a query parameter or a body can be invalid (400); a path names a row that may not
exist (404); a body can be too large (413) or not JSON (415). One more comes from the web server
before the app: an address longer than gunicorn reads (414, no JSON body). Views still document
what they mean by a status (``extend_schema(responses=…)``); this hook adds the ones they left
out, so a client generator or a fuzzer (``tests/api/test_schema_fuzz.py``) never meets an
undocumented status code.
"""

from __future__ import annotations

from typing import Any

ERRORS_REF = {"$ref": "#/components/schemas/Errors"}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "index": {"type": "integer", "description": "Item of a bulk request."},
        "field": {"type": "string", "nullable": True},
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
    "required": ["field", "code", "message"],
}
ERRORS_SCHEMA = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": {"$ref": "#/components/schemas/Error"}}},
    "required": ["errors"],
}
DESCRIPTIONS = {
    "400": "Invalid input: every problem, with the field (or query parameter) it concerns.",
    "401": "Not authenticated: no session and no valid `Authorization: Token <key>`.",
    "403": "Authenticated, but not allowed (the role lacks the permission, or not yours).",
    "404": "No such row (or no such path).",
    "413": "The request body is too large.",
    "414": "The address is too long: the server reads request lines up to 4,094 bytes.",
    "415": "The request body is not JSON (send `Content-Type: application/json`).",
}
WITHOUT_BODY = {"414"}  # answered before the app sees the request
METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


def error_statuses(operation: dict[str, Any]) -> list[str]:
    """The error statuses any operation of this shape can answer."""
    statuses = ["401", "403"]
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if has_body or any(parameter.get("in") == "query" for parameter in parameters):
        statuses.append("400")
    if any(parameter.get("in") == "path" for parameter in parameters):
        statuses.append("404")
    if any(parameter.get("in") in ("path", "query") for parameter in parameters):
        statuses.append("414")  # answered by the web server (gunicorn), without a JSON body
    if has_body:
        statuses += ["413", "415"]
    return statuses


def link_created_rows(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: OpenAPI links from each create (``POST /things/``,
    201 with the new row's ``id``) to the operations on that row (``/things/{id}/``), so a
    client, or schemathesis's stateful phase, can follow a new row without guessing ids."""
    paths = result.get("paths", {})
    schemas = result.get("components", {}).get("schemas", {})
    for path, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        detail = paths.get(f"{path}{{id}}/")
        if not created or not detail:
            continue
        ref = created.get("content", {}).get("application/json", {}).get("schema", {})
        component = schemas.get(ref.get("$ref", "").rsplit("/", 1)[-1], {})
        if "id" not in component.get("properties", {}):
            continue
        links = created.setdefault("links", {})
        for method, operation in detail.items():
            if method in METHODS and "operationId" in operation:
                links.setdefault(
                    operation["operationId"],
                    {
                        "operationId": operation["operationId"],
                        "parameters": {"id": "$response.body#/id"},
                        "description": f"{method.upper()} the row just created.",
                    },
                )
    return result


def document_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: add the error answers each operation can give."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schemas.setdefault("Errors", ERRORS_SCHEMA)
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in error_statuses(operation):
                answer = {"description": DESCRIPTIONS[status]}
                if status not in WITHOUT_BODY:
                    answer["content"] = {"application/json": {"schema": ERRORS_REF}}
                responses.setdefault(status, answer)
            operation["responses"] = dict(sorted(responses.items()))
    return result
