"""Backtest pages: who may simulate and publish, what everyone may read, progress JSON."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from leads.choices import DefinitionStatus
from leads.models import IcpVersion
from scoring.backtest.models import Backtest
from scoring.models import ScoringModel
from scoring.selectors import scoring_model_in_force
from tests.factories import UserFactory
from tests.scoring.backtest_world import build_world, draft_model_doubling_demo_requests

pytestmark = pytest.mark.django_db


def user_with(*perms: str):
    user = UserFactory()
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def draft():
    return draft_model_doubling_demo_requests()


@pytest.fixture
def modeller(client):
    client.force_login(user_with("scoring.change_scoringmodel", "scoring.view_scoringmodel"))
    return client


@pytest.fixture
def viewer(client):
    client.force_login(UserFactory())
    return client


def simulate(client, draft, capture):
    with capture(execute=True):
        response = client.post(reverse("scoring:backtests"), {"model": draft.pk})
    return response


def test_simulate_runs_the_backtest_and_shows_both_columns(
    world, draft, modeller, django_capture_on_commit_callbacks
):
    response = simulate(modeller, draft, django_capture_on_commit_callbacks)
    backtest = Backtest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("scoring:backtest", args=[backtest.pk])
    page = modeller.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    row = {r["key"]: r for r in page.context["rows"]}["eligible"]
    assert (row["current"], row["draft"]) == ("1", "2")
    assert "Current (ICP v1, model v1)" in html and "Draft (ICP v1, model v2)" in html
    assert 'data-chart="chart-mql-weekly"' in html
    assert "Publish this draft (scoring model v2)" in html


def test_progress_json(world, draft, modeller, django_capture_on_commit_callbacks):
    simulate(modeller, draft, django_capture_on_commit_callbacks)
    backtest = Backtest.objects.get()
    progress = modeller.get(reverse("scoring:backtest-progress", args=[backtest.pk])).json()
    assert progress == {
        "backtest": backtest.pk,
        "status": "done",
        "processed": 4,
        "total": 4,
        "percent": 100,
        "stalled": False,
    }


def test_a_running_backtest_shows_its_progress_bar(world, draft, modeller, monkeypatch):
    monkeypatch.setattr("scoring.backtest.tasks.enqueue_backtest", lambda backtest_id: None)
    modeller.post(reverse("scoring:backtests"), {"model": draft.pk})
    backtest = Backtest.objects.get()
    html = modeller.get(reverse("scoring:backtest", args=[backtest.pk])).content.decode()
    assert reverse("scoring:backtest-progress", args=[backtest.pk]) in html
    assert "js/progress.js" in html
    resumed = modeller.post(reverse("scoring:backtest-resume", args=[backtest.pk]))
    assert resumed.status_code == 302


def test_everyone_signed_in_reads_results_but_cannot_simulate_or_publish(
    world, draft, modeller, django_capture_on_commit_callbacks, client
):
    simulate(modeller, draft, django_capture_on_commit_callbacks)
    backtest = Backtest.objects.get()
    client.force_login(UserFactory())
    for url in (
        reverse("scoring:backtests"),
        reverse("scoring:backtest", args=[backtest.pk]),
        reverse("scoring:backtest-leads", args=[backtest.pk]),
        reverse("scoring:backtest-progress", args=[backtest.pk]),
    ):
        assert client.get(url).status_code == 200, url
    index = client.get(reverse("scoring:backtests")).content.decode()
    assert 'id="simulate"' not in index
    assert (
        "Publish this draft"
        not in client.get(reverse("scoring:backtest", args=[backtest.pk])).content.decode()
    )
    assert client.post(reverse("scoring:backtests"), {"model": draft.pk}).status_code == 403
    publish = reverse("scoring:backtest-publish", args=[backtest.pk, "model"])
    assert client.get(publish).status_code == 403
    assert client.post(publish).status_code == 403
    assert client.post(reverse("scoring:backtest-resume", args=[backtest.pk])).status_code == 403
    assert Backtest.objects.count() == 1
    draft.refresh_from_db()
    assert draft.status == DefinitionStatus.DRAFT


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("scoring:backtests"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_model_permission_does_not_cover_a_draft_icp(world, modeller):
    icp = IcpVersion.objects.get(number=1)
    from leads.services import definition_create_draft

    draft_icp = definition_create_draft(model=IcpVersion, actor=None, copy_from=icp)
    assert modeller.post(reverse("scoring:backtests"), {"icp": draft_icp.pk}).status_code == 403


def test_the_form_needs_a_draft(world, modeller):
    response = modeller.post(reverse("scoring:backtests"), {})
    assert response.status_code == 200
    assert "Pick a draft ICP, a draft scoring model or both." in response.content.decode()
    assert not Backtest.objects.exists()


def test_publish_has_a_confirm_step_then_publishes(
    world, draft, modeller, django_capture_on_commit_callbacks
):
    simulate(modeller, draft, django_capture_on_commit_callbacks)
    backtest = Backtest.objects.get()
    url = reverse("scoring:backtest-publish", args=[backtest.pk, "model"])
    confirm = modeller.get(url)
    assert "Yes, publish scoring model v2" in confirm.content.decode()
    # What publishing does now: the hot lead's demo request (55 → 85) makes it an MQL.
    assert '<strong data-stage="mql">1</strong> lead moves to MQL' in confirm.content.decode()
    assert '<strong class="impact-handoffs">1</strong> handoff opens' in confirm.content.decode()
    assert scoring_model_in_force().number == 1
    response = modeller.post(url)
    assert response.status_code == 302
    assert scoring_model_in_force() == ScoringModel.objects.get(pk=draft.pk)


def test_the_drill_down_lists_the_changed_leads(
    world, draft, modeller, django_capture_on_commit_callbacks
):
    simulate(modeller, draft, django_capture_on_commit_callbacks)
    backtest = Backtest.objects.get()
    page = modeller.get(reverse("scoring:backtest-leads", args=[backtest.pk]))
    rows = list(page.context["page"])
    assert [row.lead_id for row in rows] == [world["hot"].pk]
    assert "becomes eligible" in page.content.decode()


def test_an_edited_draft_is_flagged_on_the_results(
    world, draft, modeller, django_capture_on_commit_callbacks
):
    simulate(modeller, draft, django_capture_on_commit_callbacks)
    backtest = Backtest.objects.get()
    url = reverse("scoring:backtest", args=[backtest.pk])
    assert "was edited after this backtest" not in modeller.get(url).content.decode()
    draft.weights.filter(kind="form_fill").update(points=1)
    assert "was edited after this backtest" in modeller.get(url).content.decode()


def test_the_admin_change_page_of_a_draft_links_to_simulate(draft, admin_client):
    html = admin_client.get(
        reverse("admin:scoring_scoringmodel_change", args=[draft.pk])
    ).content.decode()
    assert f"{reverse('scoring:backtests')}?model={draft.pk}" in html
    published = ScoringModel.objects.get(number=1)
    html = admin_client.get(
        reverse("admin:scoring_scoringmodel_change", args=[published.pk])
    ).content.decode()
    assert "Simulate (backtest) this draft" not in html


def test_pages_take_a_fixed_number_of_queries(
    world, draft, modeller, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    simulate(modeller, draft, django_capture_on_commit_callbacks)
    backtest = Backtest.objects.get()
    # Session, user and permissions included; none grows with the number of leads or rows.
    for name, args, budget in (
        ("scoring:backtests", [], 12),
        ("scoring:backtest", [backtest.pk], 9),
        ("scoring:backtest-leads", [backtest.pk], 9),
        ("scoring:backtest-progress", [backtest.pk], 4),
    ):
        with django_assert_max_num_queries(budget):
            assert modeller.get(reverse(name, args=args)).status_code == 200
