"""The audit trail of the shared definitions: who changed what, when, and how."""

import json
from datetime import UTC, datetime

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.urls import reverse

from leads.audit.kinds import KINDS_BY_KEY
from leads.audit.selectors import definition_history, history_entry
from leads.models import (
    BusinessCalendar,
    Holiday,
    IcpCriterion,
    IcpVersion,
    LifecycleVersion,
    RejectionReason,
)
from leads.services import definition_create_draft, definition_publish
from scoring.models import EventWeight, ScoringModel
from tests.factories import UserFactory
from tests.leads.test_admin import icp_post, management_form

pytestmark = pytest.mark.django_db


def entries_of(kind: str) -> list[LogEntry]:
    return list(definition_history(KINDS_BY_KEY[kind]))


@pytest.fixture
def editor():
    return UserFactory(username="rita.revops", first_name="Rita", last_name="Ops")


def test_a_draft_copied_by_the_service_is_one_entry_naming_its_source_and_actor(editor):
    v1 = IcpVersion.objects.get(number=1)
    before = LogEntry.objects.count()

    draft = definition_create_draft(model=IcpVersion, actor=editor, copy_from=v1, note="Wider")

    assert LogEntry.objects.count() == before + 1  # not one per copied criterion
    entry = entries_of("icp")[0]
    assert entry.actor == editor
    assert entry.object_id == draft.pk
    rows = v1.criteria.count()
    assert entry.additional_data["event"] == "draft_created"
    assert entry.additional_data["version"] == 2
    assert entry.additional_data["summary"] == f"Draft v2 created from v1 ({rows} rows copied)"


def test_publishing_records_the_version_its_start_and_the_publisher(editor):
    draft = definition_create_draft(
        model=IcpVersion, actor=editor, copy_from=IcpVersion.objects.get(number=1)
    )
    effective = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)

    definition_publish(version=draft, actor=editor, effective_from=effective)

    entry = entries_of("icp")[0]
    assert entry.actor == editor
    assert entry.additional_data["event"] == "published"
    assert entry.additional_data["version"] == 2
    assert entry.additional_data["summary"] == "Published v2, effective 2030-01-02 09:30 UTC"
    assert entry.changes["status"] == ["draft", "published"]
    shown = history_entry(entry)
    assert shown.is_publish
    assert shown.action == "published"
    assert ("status", "Draft", "Published") in {(c.field, c.before, c.after) for c in shown.changes}
    # The signal's own update entry is not written as well.
    assert LogEntry.objects.filter(object_id=draft.pk, content_type=entry.content_type).count() == 2


def test_a_rows_change_carries_its_version_and_a_before_after_diff(editor):
    draft = definition_create_draft(
        model=ScoringModel, actor=editor, copy_from=ScoringModel.objects.get(number=1)
    )
    weight = draft.weights.order_by("kind").first()
    old_points = weight.points

    with set_actor(editor):  # a change made outside any request (a shell, a command)
        weight.points = old_points + 7
        weight.save()

    entry = entries_of("scoring-model")[0]
    assert entry.actor == editor
    assert entry.content_type.model_class() is EventWeight
    assert entry.additional_data == {"definition": "scoring-model", "version": draft.number}
    assert entry.changes["points"] == [str(old_points), str(old_points + 7)]


def test_reason_lists_and_calendars_are_audited_too(editor):
    with set_actor(editor):
        reason = RejectionReason.objects.create(key="budget-freeze", label="Budget freeze")
        reason.label = "Budget frozen"
        reason.save()
        calendar = BusinessCalendar.objects.first()
        Holiday.objects.create(calendar=calendar, date="2030-07-04", name="Independence Day")

    reasons = entries_of("rejection-reasons")
    assert [e.action for e in reasons[:2]] == [LogEntry.Action.UPDATE, LogEntry.Action.CREATE]
    assert reasons[0].changes["label"] == ["Budget freeze", "Budget frozen"]
    assert all(e.actor == editor for e in reasons[:2])
    holiday = entries_of("calendars")[0]
    assert holiday.content_type.model_class() is Holiday
    assert holiday.additional_data == {"definition": "calendars", "calendar": str(calendar)}


def test_admin_edits_of_a_draft_and_its_inline_rows_are_recorded_with_the_admin(admin_client):
    admin = admin_client.get(reverse("admin:index")).wsgi_request.user
    draft = definition_create_draft(
        model=IcpVersion, actor=admin, copy_from=IcpVersion.objects.get(number=1)
    )
    criteria = list(draft.criteria.order_by("pk"))
    first = criteria[0]
    posted = []
    for criterion in criteria:
        row = {
            "id": criterion.pk,
            "version": draft.pk,
            "name": criterion.name,
            "attribute": criterion.attribute,
            "points": criterion.points,
        }
        if criterion.values:
            row["values"] = json.dumps(criterion.values)
        if criterion.min_value is not None:
            row["min_value"] = criterion.min_value
        if criterion.max_value is not None:
            row["max_value"] = criterion.max_value
        if criterion.is_exclusion:
            row["is_exclusion"] = "on"
        posted.append(row)
    posted[0]["points"] = 0 if first.is_exclusion else first.points + 1
    data = icp_post(posted, a=draft.tier_a_min_points + 1)
    data.update(management_form("criteria", len(criteria), initial=len(criteria)))

    response = admin_client.post(reverse("admin:leads_icpversion_change", args=[draft.pk]), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    entries = [e for e in entries_of("icp") if e.additional_data.get("event") is None]
    by_model = {e.content_type.model_class(): e for e in entries}
    assert by_model[IcpVersion].actor.username == "ops"
    assert by_model[IcpVersion].changes["tier_a_min_points"] == [
        str(draft.tier_a_min_points),
        str(draft.tier_a_min_points + 1),
    ]
    criterion_entry = by_model[IcpCriterion]
    assert criterion_entry.actor.username == "ops"
    assert criterion_entry.object_repr == first.name
    assert criterion_entry.additional_data == {"definition": "icp", "version": draft.number}
    assert criterion_entry.changes["points"][0] == str(first.points)


def test_admin_publish_action_is_recorded_with_the_admin(admin_client):
    draft = definition_create_draft(
        model=LifecycleVersion, actor=None, copy_from=LifecycleVersion.objects.get(number=1)
    )

    admin_client.post(
        reverse("admin:leads_lifecycleversion_changelist"),
        {"action": "publish_now", "_selected_action": [draft.pk]},
    )

    entry = entries_of("lifecycle")[0]
    assert entry.additional_data["event"] == "published"
    assert entry.actor.username == "ops"
    draft_entry = entries_of("lifecycle")[1]
    assert draft_entry.actor is None
    assert history_entry(draft_entry).actor == "system"
