"""``/api/v1/sales-reps/`` and ``/api/v1/teams/``: reps and teams managed through the API, with
the model's validation, read by the pipeline roles and written by the RevOps admin."""

import pytest

from leads.api.team import _teams
from leads.models import SalesRep
from leads.roles import REVOPS_ADMIN, VIEWER
from tests.api.conftest import fields_of, token_client
from tests.factories import UserFactory
from tests.metrics.factories import sales_rep, utc, won

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(db):
    return token_client(UserFactory(username="revops.admin", role=REVOPS_ADMIN))


@pytest.fixture
def org(db):
    """Mia manages Ada; Leo manages Bob; an owner imported from another CRM (an inactive user,
    no rep record) owns a won deal."""
    mia = UserFactory(username="mia", first_name="Mia")
    leo = UserFactory(username="leo", first_name="Leo")
    ada = sales_rep("ada", manager=mia)
    bob = sales_rep("bob", manager=leo)
    imported = UserFactory(username="imported.agent", is_active=False)
    won(owner=imported, lead=None, closed_at=utc(3, 10), amount=900)
    return {"mia": mia, "leo": leo, "ada": ada, "bob": bob, "imported": imported}


# --- Sales reps ------------------------------------------------------------------------------


def test_an_imported_owner_becomes_a_rep_in_one_call(admin_api, org):
    response = admin_api.post(
        "/api/v1/sales-reps/",
        {"user": org["imported"].pk, "tiers": ["A", "B"], "capacity": 25, "manager": org["mia"].pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["username"], body["user_is_active"], body["tiers"]) == (
        "imported.agent",
        False,
        ["A", "B"],
    )
    rep = SalesRep.objects.get(user=org["imported"])
    assert (rep.capacity, rep.manager, rep.is_active) == (25, org["mia"], True)


def test_the_team_filter_of_the_kpis_then_counts_their_deals(admin_api, org):
    admin_api.post(
        "/api/v1/sales-reps/",
        {"user": org["imported"].pk, "manager": org["mia"].pk},
        format="json",
    )
    params = {"preset": "custom", "start": "2026-03-01", "end": "2026-03-31"}
    body = admin_api.get(
        "/api/v1/kpis/opportunity_results/", {**params, "team": org["mia"].pk}
    ).json()
    assert (body["data"]["won"], body["data"]["won_amount"]) == (1, "900.00")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"tiers": ["Z"]}, "tiers"),
        ({"capacity": 0}, "capacity"),
        ({"out_of_office_from": "2026-03-10", "out_of_office_until": "2026-03-01"}, None),
        ({"manager": "self"}, "manager"),
        ({"user": 999_999}, "user"),
    ],
)
def test_a_rep_is_validated_by_the_model(admin_api, org, payload, field):
    user = org["imported"]
    data = {"user": user.pk, **payload}
    if data.get("manager") == "self":
        data["manager"] = user.pk
    response = admin_api.post("/api/v1/sales-reps/", data, format="json")
    assert response.status_code == 400, response.content
    assert field is None or any(name.startswith(field) for name in fields_of(response))
    assert not SalesRep.objects.filter(user=user).exists()


def test_a_user_is_a_rep_once(admin_api, org):
    response = admin_api.post("/api/v1/sales-reps/", {"user": org["ada"].user.pk}, format="json")
    assert response.status_code == 400
    assert "user" in fields_of(response)


def test_a_rep_is_updated_field_by_field(admin_api, org):
    url = f"/api/v1/sales-reps/{org['ada'].pk}/"
    response = admin_api.patch(url, {"capacity": 12, "manager": org["leo"].pk}, format="json")
    assert response.status_code == 200, response.content
    org["ada"].refresh_from_db()
    assert (org["ada"].capacity, org["ada"].manager) == (12, org["leo"])
    moved = admin_api.patch(url, {"user": org["bob"].user.pk}, format="json")
    assert moved.status_code == 400 and "user" in fields_of(moved)


def test_reps_are_listed_and_filtered(reader_api, org):
    body = reader_api.get("/api/v1/sales-reps/", {"manager": org["mia"].pk}).json()
    assert [rep["username"] for rep in body["results"]] == ["ada"]


def test_a_sales_rep_reads_but_does_not_write(reader_api, org):
    assert reader_api.get("/api/v1/sales-reps/").status_code == 200
    response = reader_api.post("/api/v1/sales-reps/", {"user": org["imported"].pk}, format="json")
    assert response.status_code == 403


def test_the_viewer_reads_no_rep(org):
    viewer = token_client(UserFactory(username="viewer", role=VIEWER))
    assert viewer.get("/api/v1/sales-reps/").status_code == 403
    assert viewer.get("/api/v1/teams/").status_code == 403


# --- Teams ----------------------------------------------------------------------------------


def test_teams_list_each_manager_with_their_reps(reader_api, org, django_assert_num_queries):
    with django_assert_num_queries(2):
        _teams()
    body = reader_api.get("/api/v1/teams/").json()
    assert [(team["manager_name"], [rep["name"] for rep in team["reps"]]) for team in body] == [
        ("Leo", ["bob"]),
        ("Mia", ["ada"]),
    ]


def test_a_team_is_formed_and_reshaped(admin_api, org):
    noa = UserFactory(username="noa", first_name="Noa")
    created = admin_api.post(
        "/api/v1/teams/", {"manager": noa.pk, "members": [org["bob"].user.pk]}, format="json"
    )
    assert created.status_code == 201, created.content
    assert [rep["user"] for rep in created.json()["reps"]] == [org["bob"].user.pk]
    org["bob"].refresh_from_db()
    assert org["bob"].manager == noa  # moved from Leo's team
    # Ada joins, Bob leaves (on no team now).
    changed = admin_api.put(
        f"/api/v1/teams/{noa.pk}/", {"members": [org["ada"].user.pk]}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert [rep["name"] for rep in changed.json()["reps"]] == ["ada"]
    org["bob"].refresh_from_db()
    assert org["bob"].manager is None


def test_an_empty_team_dissolves(admin_api, org):
    response = admin_api.put(f"/api/v1/teams/{org['mia'].pk}/", {"members": []}, format="json")
    assert (response.status_code, response.json()["reps"]) == (200, [])
    assert admin_api.get(f"/api/v1/teams/{org['mia'].pk}/").status_code == 404


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (lambda org: [org["imported"].pk], "is not a sales rep"),
        (lambda org: [999_999], "no user with id 999999"),
        (lambda org: [org["mia"].pk], "own team"),
    ],
)
def test_team_members_must_be_reps(admin_api, org, members, message):
    response = admin_api.put(
        f"/api/v1/teams/{org['mia'].pk}/", {"members": members(org)}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(e["field"] == "members" and message in e["message"] for e in errors), errors
    org["ada"].refresh_from_db()
    assert org["ada"].manager == org["mia"]  # nothing changed


def test_a_manager_forms_one_team(admin_api, org):
    response = admin_api.post(
        "/api/v1/teams/", {"manager": org["mia"].pk, "members": [org["bob"].user.pk]}, format="json"
    )
    assert response.status_code == 400 and "manager" in fields_of(response)


def test_a_new_team_without_reps_is_refused(admin_api, org):
    """It was formed and then answered 404, its manager having no rep (found by schemathesis)."""
    noa = UserFactory(username="noa")
    response = admin_api.post("/api/v1/teams/", {"manager": noa.pk, "members": []}, format="json")
    assert response.status_code == 400
    assert fields_of(response) == {"members"}


def test_an_inactive_user_manages_no_team(admin_api, org):
    response = admin_api.post(
        "/api/v1/teams/",
        {"manager": org["imported"].pk, "members": [org["bob"].user.pk]},
        format="json",
    )
    assert response.status_code == 400 and "manager" in fields_of(response)
