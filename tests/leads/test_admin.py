"""The ops admins' admin: defaults listed, bad input refused with a clear message, publishing."""

import pytest
from django.urls import reverse

from leads.models import (
    BusinessCalendar,
    IcpCriterion,
    IcpVersion,
    LifecycleStage,
    LifecycleVersion,
    SlaVersion,
)
from leads.services import definition_create_draft
from tests.factories import LeadFactory, SourceFactory


def management_form(prefix: str, total: int, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def icp_post(criteria: list[dict], **tiers) -> dict:
    data = {
        "note": "Tighter size band",
        "tier_a_min_points": tiers.get("a", 60),
        "tier_b_min_points": tiers.get("b", 35),
        "tier_c_min_points": tiers.get("c", 15),
        **management_form("criteria", len(criteria)),
    }
    for index, criterion in enumerate(criteria):
        for field, value in criterion.items():
            data[f"criteria-{index}-{field}"] = value
    return data


@pytest.mark.parametrize(
    ("url_name", "expected"),
    [
        ("admin:leads_icpversion_changelist", "ICP v1 (published)"),
        ("admin:leads_lifecycleversion_changelist", "lifecycle v1 (published)"),
        ("admin:leads_slaversion_changelist", "SLA v1 (published)"),
        ("admin:leads_businesscalendar_changelist", "Sales team — New York"),
        ("admin:leads_rejectionreason_changelist", "Not ICP fit"),
    ],
)
def test_admin_lists_the_default_definitions(admin_client, url_name, expected):
    response = admin_client.get(reverse(url_name))
    assert response.status_code == 200
    assert expected in response.content.decode()


def test_published_version_page_shows_its_rows_read_only(admin_client):
    v1 = LifecycleVersion.objects.get(number=1)
    response = admin_client.get(reverse("admin:leads_lifecycleversion_change", args=[v1.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Engaged" in body  # the MQL stage's buyer label
    assert 'name="_save"' not in body


def test_a_published_icp_shows_its_values_as_words_not_json(admin_client):
    v1 = IcpVersion.objects.get(number=1)
    body = admin_client.get(reverse("admin:leads_icpversion_change", args=[v1.pk])).content
    assert b"software, financial services, healthcare, e-commerce" in body
    assert b"[&quot;software&quot;" not in body and b'["software"' not in body


def test_posting_to_a_published_version_changes_nothing(admin_client):
    v1 = IcpVersion.objects.get(number=1)
    response = admin_client.post(
        reverse("admin:leads_icpversion_change", args=[v1.pk]), icp_post([], a=90)
    )
    assert response.status_code == 403
    v1.refresh_from_db()
    assert v1.tier_a_min_points == 35


def test_adding_an_icp_draft_with_criteria(admin_client):
    response = admin_client.post(
        reverse("admin:leads_icpversion_add"),
        icp_post(
            [
                {
                    "name": "Software",
                    "attribute": "industry",
                    "values": "Software\nSaaS",  # typed, no JSON
                    "points": 40,
                },
                {
                    "name": "Mid-market",
                    "attribute": "employees",
                    "min_value": 200,
                    "max_value": 2000,
                    "points": 30,
                },
            ]
        ),
    )
    assert response.status_code == 302
    draft = IcpVersion.objects.get(number=2)
    assert draft.created_by.username == "ops"
    assert sorted(draft.criteria.values_list("name", flat=True)) == ["Mid-market", "Software"]
    assert draft.criteria.get(name="Software").values == ["saas", "software"]


def test_icp_range_with_min_above_max_is_refused_and_nothing_saved(admin_client):
    response = admin_client.post(
        reverse("admin:leads_icpversion_add"),
        icp_post(
            [
                {
                    "name": "Size",
                    "attribute": "employees",
                    "min_value": 5000,
                    "max_value": 10,
                    "points": 5,
                }
            ]
        ),
    )
    assert response.status_code == 200
    assert "is greater than the maximum" in response.content.decode()
    assert not IcpVersion.objects.filter(number=2).exists()
    assert not IcpCriterion.objects.filter(name="Size").exists()


def test_icp_tiers_out_of_order_are_refused(admin_client):
    response = admin_client.post(
        reverse("admin:leads_icpversion_add"),
        icp_post(
            [{"name": "Software", "attribute": "industry", "values": '["software"]', "points": 40}],
            a=10,
            b=35,
        ),
    )
    assert response.status_code == 200
    assert "Tier thresholds must descend" in response.content.decode()
    assert IcpVersion.objects.count() == 1


def stage_rows(stages: list[dict]) -> dict:
    data = {"note": "", **management_form("stages", len(stages))}
    for index, stage in enumerate(stages):
        for field, value in stage.items():
            data[f"stages-{index}-{field}"] = value
    return data


BASE_STAGE = {"team": "marketing", "kind": "open", "trigger_type": "manual"}


def test_lifecycle_thresholds_inconsistent_with_order_are_refused(admin_client):
    data = stage_rows(
        [
            {**BASE_STAGE, "order": 1, "key": "lead", "name": "Lead"},
            {
                **BASE_STAGE,
                "order": 2,
                "key": "mql",
                "name": "MQL",
                "trigger_type": "score",
                "trigger_score": 70,
            },
            {
                **BASE_STAGE,
                "order": 3,
                "key": "hot",
                "name": "Hot",
                "trigger_type": "score",
                "trigger_score": 50,
            },
        ]
    )
    response = admin_client.post(reverse("admin:leads_lifecycleversion_add"), data)
    assert response.status_code == 200
    assert "Score thresholds must rise with stage order" in response.content.decode()
    assert LifecycleVersion.objects.count() == 1


def test_stage_event_trigger_with_unknown_event_kind_is_refused(admin_client):
    data = stage_rows(
        [
            {**BASE_STAGE, "order": 1, "key": "lead", "name": "Lead"},
            {
                **BASE_STAGE,
                "order": 2,
                "key": "sql",
                "name": "SQL",
                "trigger_type": "event",
                "trigger_event_kind": "fax_sent",
            },
        ]
    )
    response = admin_client.post(reverse("admin:leads_lifecycleversion_add"), data)
    assert response.status_code == 200
    assert "fax_sent is not one of the available choices" in response.content.decode()
    assert not LifecycleStage.objects.filter(key="sql", version__number=2).exists()


def test_calendar_without_working_hours_is_refused(admin_client):
    data = {
        "name": "Empty",
        "time_zone": "Europe/Paris",
        **management_form("working_hours", 0),
        **management_form("holidays", 0),
    }
    response = admin_client.post(reverse("admin:leads_businesscalendar_add"), data)
    assert response.status_code == 200
    assert "Please submit at least 1 form" in response.content.decode()
    assert not BusinessCalendar.objects.filter(name="Empty").exists()


def test_publish_action_publishes_a_valid_draft(admin_client):
    v1 = SlaVersion.objects.get(number=1)
    draft = definition_create_draft(model=SlaVersion, actor=None, copy_from=v1)
    response = admin_client.post(
        reverse("admin:leads_slaversion_changelist"),
        {"action": "publish_now", "_selected_action": [draft.pk]},
        follow=True,
    )
    assert "SLA v2 is published and in force" in response.content.decode()
    # An SLA change rescores nobody, so the publisher is not told to watch a rescore.
    assert not any("rescored" in str(m) for m in response.context["messages"])
    draft.refresh_from_db()
    assert draft.is_published


def test_publish_action_reports_why_an_invalid_draft_stays_a_draft(admin_client):
    draft = definition_create_draft(model=IcpVersion, actor=None)  # no criteria at all
    response = admin_client.post(
        reverse("admin:leads_icpversion_changelist"),
        {"action": "publish_now", "_selected_action": [draft.pk]},
        follow=True,
    )
    assert "needs at least one criterion that awards points" in response.content.decode()
    draft.refresh_from_db()
    assert not draft.is_published


def test_new_draft_action_copies_the_version(admin_client):
    v1 = LifecycleVersion.objects.get(number=1)
    admin_client.post(
        reverse("admin:leads_lifecycleversion_changelist"),
        {"action": "new_draft_from", "_selected_action": [v1.pk]},
    )
    draft = LifecycleVersion.objects.get(number=2)
    assert draft.stages.count() == v1.stages.count()


def test_leads_changelist_searches_filters_and_paginates(admin_client):
    source = SourceFactory(name="Webinar")
    LeadFactory.create_batch(55, source=source, stage="mql")
    LeadFactory(email="needle@haystack.io", stage="lead")
    url = reverse("admin:leads_lead_changelist")

    page = admin_client.get(url, {"stage": "mql"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 55
    assert len(page.context["cl"].result_list) == 50

    found = admin_client.get(url, {"q": "needle"})
    assert [lead.email for lead in found.context["cl"].result_list] == ["needle@haystack.io"]


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:leads_account_changelist",
        "admin:leads_handoff_changelist",
        "admin:leads_opportunity_changelist",
        "admin:leads_engagementevent_changelist",
        "admin:leads_stagetransition_changelist",
        "admin:leads_source_changelist",
        "admin:leads_campaign_changelist",
    ],
)
def test_fact_changelists_render(admin_client, url_name):
    LeadFactory()
    assert admin_client.get(reverse(url_name), {"q": "x"}).status_code == 200
