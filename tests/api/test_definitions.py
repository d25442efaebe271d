"""Definitions over the API: every authenticated user reads them; drafting, editing and
publishing need the model's add / change permission; a published version never changes."""

import pytest

from leads.models import IcpVersion, LifecycleVersion, SlaVersion
from leads.selectors import version_in_force
from scoring.models import RescoreJob, ScoringModel
from tests.api.conftest import errors_of, fields_of, grant, token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("/api/v1/definitions/icp/", IcpVersion, "criteria"),
    ("/api/v1/definitions/lifecycle/", LifecycleVersion, "stages"),
    ("/api/v1/definitions/sla/", SlaVersion, "policies"),
    ("/api/v1/definitions/scoring-models/", ScoringModel, "weights"),
]


@pytest.fixture
def icp_admin(db):
    user = grant(
        UserFactory(username="icp.admin"), "leads.add_icpversion", "leads.change_icpversion"
    )
    return token_client(user)


@pytest.mark.parametrize("url, model, rows", ENDPOINTS)
def test_every_user_reads_the_versions_with_their_rows(reader_api, url, model, rows):
    listed = reader_api.get(url)
    assert listed.status_code == 200
    [version] = listed.json()["results"]  # v1, published by the data migration
    current = version_in_force(model)
    assert (version["id"], version["number"], version["status"]) == (current.pk, 1, "published")
    assert version["in_force"] is True
    assert len(version[rows]) == getattr(current, rows).count() > 0
    assert reader_api.get(f"{url}{current.pk}/").json()[rows] == version[rows]


@pytest.mark.parametrize("url, model, rows", ENDPOINTS)
def test_writing_needs_the_models_permissions(reader_api, url, model, rows):
    current = version_in_force(model)
    drafted = reader_api.post(url, {"copy_from": current.pk}, format="json")
    assert drafted.status_code == 403
    assert f"add_{model._meta.model_name}" in errors_of(drafted)[0]["message"]
    published = reader_api.post(f"{url}{current.pk}/publish/", {}, format="json")
    assert published.status_code == 403
    edited = reader_api.patch(f"{url}{current.pk}/", {"note": "x"}, format="json")
    assert edited.status_code == 403
    assert model.objects.count() == 1


def test_a_draft_is_copied_edited_and_published(icp_admin, django_capture_on_commit_callbacks):
    current = version_in_force(IcpVersion)
    drafted = icp_admin.post(
        "/api/v1/definitions/icp/", {"copy_from": current.pk, "note": "Fintech push"}, format="json"
    )
    assert drafted.status_code == 201, drafted.content
    draft = drafted.json()
    assert (draft["number"], draft["status"], draft["in_force"]) == (2, "draft", False)
    assert len(draft["criteria"]) == current.criteria.count()

    criteria = [{k: v for k, v in row.items() if k != "id"} for row in draft["criteria"]] + [
        {"name": "Fintech", "attribute": "industry", "values": ["Fintech"], "points": 10}
    ]
    edited = icp_admin.patch(
        f"/api/v1/definitions/icp/{draft['id']}/",
        {"tier_a_min_points": 40, "criteria": criteria},
        format="json",
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["tier_a_min_points"] == 40
    fintech = [row for row in edited.json()["criteria"] if row["name"] == "Fintech"]
    assert fintech[0]["values"] == ["fintech"]  # the model's clean() lower-cases values

    with django_capture_on_commit_callbacks():
        published = icp_admin.post(
            f"/api/v1/definitions/icp/{draft['id']}/publish/", {}, format="json"
        )
    assert published.status_code == 200, published.content
    assert published.json()["status"] == "published"
    assert published.json()["in_force"] is True
    assert version_in_force(IcpVersion).pk == draft["id"]
    # Publishing an ICP rescores every lead, as from the admin.
    assert RescoreJob.objects.filter(reason=RescoreJob.Reason.ICP_PUBLISHED).exists()


def test_a_published_version_cannot_be_edited_or_published_again(icp_admin):
    current = version_in_force(IcpVersion)
    edited = icp_admin.patch(f"/api/v1/definitions/icp/{current.pk}/", {"note": "x"}, format="json")
    assert edited.status_code == 400
    assert "is published and cannot be edited" in errors_of(edited)[0]["message"]
    again = icp_admin.post(f"/api/v1/definitions/icp/{current.pk}/publish/", {}, format="json")
    assert again.status_code == 400
    assert "already published" in errors_of(again)[0]["message"]


def test_invalid_rows_are_reported_by_position_and_nothing_is_written(icp_admin):
    draft = icp_admin.post("/api/v1/definitions/icp/", {}, format="json").json()
    rows = [
        {
            "name": "Size",
            "attribute": "employees",
            "min_value": "500",
            "max_value": "100",
            "points": 5,
        },
        {"name": "Region", "attribute": "region", "values": [], "points": 5},
        {"name": "Region", "attribute": "region", "values": ["NA"], "points": 5},
        {"name": "Region", "attribute": "region", "values": ["EMEA"], "points": 5},
    ]
    response = icp_admin.patch(
        f"/api/v1/definitions/icp/{draft['id']}/", {"criteria": rows}, format="json"
    )
    assert response.status_code == 400
    assert fields_of(response) == {
        "criteria[0].max_value",
        "criteria[1].values",
        "criteria[3]",  # the same name twice in one version
    }
    assert IcpVersion.objects.get(pk=draft["id"]).criteria.count() == 0
    unknown = icp_admin.patch(
        f"/api/v1/definitions/icp/{draft['id']}/",
        {"criteria": [*rows[2:3], {"name": "Bad", "attribute": "shoe_size", "points": 5}]},
        format="json",
    )
    assert unknown.status_code == 400
    [entry] = errors_of(unknown)
    assert (entry["field"], entry["code"]) == ("criteria[1].attribute", "invalid_choice")


def test_publishing_an_incomplete_draft_says_why(icp_admin):
    draft = icp_admin.post("/api/v1/definitions/icp/", {"note": "empty"}, format="json").json()
    response = icp_admin.post(f"/api/v1/definitions/icp/{draft['id']}/publish/", {}, format="json")
    assert response.status_code == 400
    assert "needs at least one criterion" in errors_of(response)[0]["message"]
    assert IcpVersion.objects.get(pk=draft["id"]).status == "draft"


def test_publishing_in_the_past_is_refused(icp_admin):
    current = version_in_force(IcpVersion)
    draft = icp_admin.post("/api/v1/definitions/icp/", {"copy_from": current.pk}, format="json")
    response = icp_admin.post(
        f"/api/v1/definitions/icp/{draft.json()['id']}/publish/",
        {"effective_from": "2020-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 400
    assert fields_of(response) == {"effective_from"}


def test_copying_an_unknown_version_is_400(icp_admin):
    response = icp_admin.post("/api/v1/definitions/icp/", {"copy_from": 999999}, format="json")
    assert response.status_code == 400
    assert fields_of(response) == {"copy_from"}


def test_scoring_model_weights_are_edited_on_a_draft(ops_api):
    current = version_in_force(ScoringModel)
    draft = ops_api.post(
        "/api/v1/definitions/scoring-models/", {"copy_from": current.pk}, format="json"
    ).json()
    response = ops_api.patch(
        f"/api/v1/definitions/scoring-models/{draft['id']}/",
        {"half_life_days": 14, "weights": [{"kind": "demo_request", "points": 40, "daily_cap": 1}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["weights"] == [
        {
            "id": response.json()["weights"][0]["id"],
            "kind": "demo_request",
            "points": 40.0,
            "daily_cap": 1,
        }
    ]
    bad = ops_api.patch(
        f"/api/v1/definitions/scoring-models/{draft['id']}/",
        {"weights": [{"kind": "telepathy", "points": 400}]},
        format="json",
    )
    assert bad.status_code == 400
    assert fields_of(bad) == {"weights[0].kind", "weights[0].points"}


def test_lifecycle_and_sla_drafts_are_checked_by_their_models(ops_api):
    lifecycle = version_in_force(LifecycleVersion)
    draft = ops_api.post(
        "/api/v1/definitions/lifecycle/", {"copy_from": lifecycle.pk}, format="json"
    ).json()
    stages = [{k: v for k, v in row.items() if k != "id"} for row in draft["stages"]]
    stages[1]["trigger_type"] = "score"
    stages[1]["trigger_score"] = None
    response = ops_api.patch(
        f"/api/v1/definitions/lifecycle/{draft['id']}/", {"stages": stages}, format="json"
    )
    assert response.status_code == 400
    assert fields_of(response) == {"stages[1].trigger_score"}

    sla = version_in_force(SlaVersion)
    draft = ops_api.post("/api/v1/definitions/sla/", {"copy_from": sla.pk}, format="json").json()
    policies = [{k: v for k, v in row.items() if k != "id"} for row in draft["policies"]]
    policies[0]["accept_within_hours"] = "0.50"
    policies[0]["respond_within_hours"] = "2.00"
    response = ops_api.patch(
        f"/api/v1/definitions/sla/{draft['id']}/", {"policies": policies}, format="json"
    )
    assert response.status_code == 400
    assert fields_of(response) == {"policies[0].accept_within_hours"}
