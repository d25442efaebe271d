"""Validation of a bulk event request in one pass over plain dicts.

A DRF serializer per event costs more than storing the batch (measured by
``bench/api_ingest_bench.py``), so a batch of up to 1,000 events is checked here: shapes and
types item by item, then the leads it names resolved in one query and its content assets in
another. Every problem is reported with the item's index, field and a precise message; the
caller writes nothing unless told to skip invalid items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.validators import validate_email
from django.db.models import Q
from django.utils import timezone

from leads.choices import EventKind
from leads.models import ContentAsset, Lead
from leads.services.facts import EventRow
from revops.api_errors import error
from revops.datetimes import ISO_HINT, InstantError, parse_instant

MAX_BATCH = 1_000
# A sender's clock slightly ahead of ours must not make a fresh event "in the future".
CLOCK_SKEW = timedelta(minutes=5)
LEAD_KEYS = ("lead", "lead_external_id", "lead_email")
FIELDS = frozenset(
    {*LEAD_KEYS, "kind", "occurred_at", "source_system", "external_id", "properties"}
    | {"content_asset"}
)
KINDS = frozenset(EventKind.values)
KIND_LIST = ", ".join(EventKind.values)
MAX_ID = 2**63 - 1
EARLIEST_YEAR = 1900
MAX_LENGTHS = {"source_system": 40, "external_id": 100, "lead_external_id": 100}


@dataclass
class EventBatch:
    events: list[EventRow] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)  # each event's position in the request
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def invalid_indexes(self) -> set[int]:
        return {entry["index"] for entry in self.errors}


def batch_items(payload: Any) -> list:
    """The list of events of a request body: a JSON list, or an object {"events": [...]}."""
    if isinstance(payload, dict) and set(payload) == {"events"}:
        payload = payload["events"]
    if not isinstance(payload, list):
        raise ValueError(
            'Send the events as a JSON list, or as an object {"events": [...]} (no other keys).'
        )
    return payload


def _text(item: dict, name: str, index: int, errors: list, *, required: bool) -> str | None:
    value = item.get(name)
    if value is None:
        if required:
            errors.append(
                error("This field is required.", code="required", field=name, index=index)
            )
        return None
    if not isinstance(value, str):
        errors.append(
            error(f"Must be a string, not {type(value).__name__}.", field=name, index=index)
        )
        return None
    value = value.strip()
    if required and not value:
        errors.append(error("This field may not be blank.", code="blank", field=name, index=index))
        return None
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        errors.append(
            error(
                f"Ensure this field has no more than {limit} characters ({len(value)} given).",
                code="max_length",
                field=name,
                index=index,
            )
        )
        return None
    return value


def _instant(value: Any, index: int, errors: list, now: datetime) -> datetime | None:
    if value is None:
        errors.append(
            error("This field is required.", code="required", field="occurred_at", index=index)
        )
        return None
    if not isinstance(value, str) or len(value) < 16:
        errors.append(
            error(
                f"Not a date and time: {value!r}; {ISO_HINT} (with a time).",
                field="occurred_at",
                index=index,
            )
        )
        return None
    try:  # the API's one reading of an instant: no offset = UTC, none PostgreSQL cannot store
        instant = parse_instant(value, zone=UTC)
    except InstantError as problem:
        errors.append(error(problem.message, code=problem.code, field="occurred_at", index=index))
        return None
    if instant.year < EARLIEST_YEAR:
        errors.append(
            error(
                f"{value} is before {EARLIEST_YEAR}: not an engagement event's time.",
                code="out_of_range",
                field="occurred_at",
                index=index,
            )
        )
        return None
    if instant > now + CLOCK_SKEW:
        errors.append(
            error(
                f"{value} is in the future; events are recorded after they happen.",
                code="future",
                field="occurred_at",
                index=index,
            )
        )
        return None
    return instant


def parse_batch(items: list, *, now: datetime | None = None) -> EventBatch:
    """Check every item; resolve leads (one query) and content assets (one query, if any)."""
    now = now or timezone.now()
    batch = EventBatch()
    errors = batch.errors
    pending: list[tuple[int, str, Any, dict]] = []  # (index, lead key, lead value, fields)
    lead_ids: set[int] = set()
    lead_external_ids: set[str] = set()
    lead_emails: set[str] = set()
    asset_ids: set[int] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(
                error(
                    f"Each event must be a JSON object, not {type(item).__name__}.",
                    index=index,
                )
            )
            continue
        before = len(errors)
        unknown = sorted(set(item) - FIELDS)
        for name in unknown:
            errors.append(
                error(
                    f"Unknown field; an event has {', '.join(sorted(FIELDS))}.",
                    code="unknown_field",
                    field=name,
                    index=index,
                )
            )
        given = [key for key in LEAD_KEYS if item.get(key) is not None]
        lead_key = lead_value = None
        if len(given) != 1:
            got = f"; got {' and '.join(given)}" if given else ""
            errors.append(
                error(
                    "Name the lead with exactly one of lead (its id), lead_external_id or "
                    f"lead_email{got}.",
                    code="required" if not given else "invalid",
                    field="lead",
                    index=index,
                )
            )
        else:
            lead_key = given[0]
            raw = item[lead_key]
            if lead_key == "lead":
                if not _is_id(raw):
                    errors.append(
                        error("A lead id is a positive integer.", field="lead", index=index)
                    )
                else:
                    lead_value = raw
            else:
                lead_value = _text(item, lead_key, index, errors, required=True)
                if lead_value is not None and lead_key == "lead_email":
                    lead_value = lead_value.lower()
                    try:
                        validate_email(lead_value)
                    except Exception:
                        errors.append(
                            error("Enter a valid email address.", field="lead_email", index=index)
                        )
                        lead_value = None
        kind = item.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:  # a list or object is no kind either
            errors.append(
                error(
                    f"{repr(kind)[:100]} is not a known event kind; known: {KIND_LIST}."
                    if kind is not None
                    else "This field is required.",
                    code="invalid_choice" if kind is not None else "required",
                    field="kind",
                    index=index,
                )
            )
        occurred_at = _instant(item.get("occurred_at"), index, errors, now)
        source_system = _text(item, "source_system", index, errors, required=True)
        external_id = _text(item, "external_id", index, errors, required=True)
        properties = item.get("properties")
        if properties is None:
            properties = {}
        elif not isinstance(properties, dict):
            errors.append(
                error(
                    f"Must be a JSON object, not {type(properties).__name__}.",
                    field="properties",
                    index=index,
                )
            )
        asset = item.get("content_asset")
        if asset is not None:
            if not _is_id(asset):
                errors.append(
                    error(
                        "A content asset id is a positive integer.",
                        field="content_asset",
                        index=index,
                    )
                )
            else:
                asset_ids.add(asset)
        if len(errors) > before or lead_value is None:
            continue
        if lead_key == "lead":
            lead_ids.add(lead_value)
        elif lead_key == "lead_external_id":
            lead_external_ids.add(lead_value)
        else:
            lead_emails.add(lead_value)
        pending.append(
            (
                index,
                lead_key,
                lead_value,
                {
                    "kind": kind,
                    "occurred_at": occurred_at,
                    "source_system": source_system,
                    "external_id": external_id,
                    "properties": properties,
                    "content_asset_id": asset,
                    "received_at": now,
                },
            )
        )
    leads = _resolve_leads(lead_ids, lead_external_ids, lead_emails)
    known_assets = (
        set(ContentAsset.objects.filter(pk__in=asset_ids).values_list("pk", flat=True))
        if asset_ids
        else set()
    )
    for index, lead_key, lead_value, fields in pending:
        lead_id = leads[lead_key].get(lead_value)
        if lead_id is None:
            errors.append(
                error(
                    f"No lead with {_LEAD_LABELS[lead_key]} {lead_value!r}.",
                    code="does_not_exist",
                    field=lead_key,
                    index=index,
                )
            )
            continue
        if (
            fields["content_asset_id"] is not None
            and fields["content_asset_id"] not in known_assets
        ):
            errors.append(
                error(
                    f"No content asset with id {fields['content_asset_id']}.",
                    code="does_not_exist",
                    field="content_asset",
                    index=index,
                )
            )
            continue
        batch.events.append(EventRow(lead_id=lead_id, **fields))
        batch.indexes.append(index)
    errors.sort(key=lambda entry: entry["index"])
    return batch


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


_LEAD_LABELS = {"lead": "id", "lead_external_id": "external id", "lead_email": "e-mail"}


def _resolve_leads(
    ids: set[int], external_ids: set[str], emails: set[str]
) -> dict[str, dict[Any, int]]:
    """Lead ids by each way of naming a lead, in one query."""
    resolved: dict[str, dict[Any, int]] = {key: {} for key in LEAD_KEYS}
    condition = Q()
    if ids:
        condition |= Q(pk__in=ids)
    if external_ids:
        condition |= Q(external_id__in=external_ids)
    if emails:
        condition |= Q(email__in=emails)
    if not condition:
        return resolved
    rows = Lead.objects.filter(condition).order_by().values_list("pk", "external_id", "email")
    for pk, external_id, email in rows:
        if pk in ids:
            resolved["lead"][pk] = pk
        if external_id in external_ids:
            resolved["lead_external_id"][external_id] = pk
        if email in emails:
            resolved["lead_email"][email] = pk
    return resolved
