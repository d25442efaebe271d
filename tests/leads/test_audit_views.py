"""The definitions index and each definition's history page: readable by everyone signed in."""

import pytest
from auditlog.context import set_actor
from django.urls import reverse

from leads.audit.views import PAGE_SIZE
from leads.models import IcpVersion, ObjectionTag, RejectionReason
from leads.services import definition_create_draft, definition_publish
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(client):
    """A signed-in user without a single permission (a Viewer sees at least this much)."""
    user = UserFactory(username="vera.viewer")
    client.force_login(user)
    return client


@pytest.fixture
def editor():
    return UserFactory(username="rita.revops", first_name="Rita", last_name="Ops")


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("audit:history", args=["icp"]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_index_lists_every_definition_with_its_version_in_force_and_latest_change(reader, editor):
    definition_create_draft(
        model=IcpVersion, actor=editor, copy_from=IcpVersion.objects.get(number=1)
    )

    response = reader.get(reverse("audit:index"))

    body = response.content.decode()
    assert response.status_code == 200
    for label in ("Ideal Customer Profile", "Lifecycle stages", "Handoff SLAs", "Scoring model"):
        assert label in body
    for label in ("Rejection reasons", "Objection tags", "Business calendars"):
        assert label in body
    assert "v1 since" in body
    assert "Rita Ops · draft created" in body
    assert reverse("audit:history", args=["calendars"]) in body
    assert "Edit</a>" not in body  # a reader is not offered the admin


def test_index_offers_editing_to_those_who_may_edit(admin_client):
    body = admin_client.get(reverse("audit:index")).content.decode()
    assert f'href="{reverse("admin:leads_icpversion_changelist")}">Edit</a>' in body


# Three per versioned definition, one per list, the session's and the user's.
INDEX_QUERIES = 25


def test_index_query_count_is_bounded(reader, django_assert_num_queries):
    # The content types of a definition's models are read once a process, on its first view:
    # warm them first, or the count depends on which tests ran before in this process.
    assert reader.get(reverse("audit:index")).status_code == 200
    with django_assert_num_queries(INDEX_QUERIES):
        assert reader.get(reverse("audit:index")).status_code == 200


def test_history_shows_who_when_what_and_the_diff_with_publishing_highlighted(reader, editor):
    draft = definition_create_draft(
        model=IcpVersion, actor=editor, copy_from=IcpVersion.objects.get(number=1)
    )
    with set_actor(editor):
        draft.tier_a_min_points += 5
        draft.save()
    definition_publish(version=draft, actor=editor)

    response = reader.get(reverse("audit:history", args=["icp"]))

    body = response.content.decode()
    assert response.status_code == 200
    assert '<tr class="publish">' in body
    assert "Published v2, effective" in body
    assert "Draft v2 created from v1" in body
    assert "Rita Ops" in body
    assert "<dt>tier a min points</dt>" in body
    assert f"<del>{draft.tier_a_min_points - 5}</del> → <ins>{draft.tier_a_min_points}</ins>" in (
        body
    )
    # Newest first: the publish precedes the edit, which precedes the draft's creation.
    assert body.index("Published v2") < body.index("tier a min points") < body.index("Draft v2")


def test_history_filters_by_version_and_by_person(reader, editor):
    other = UserFactory(username="otto")
    v1 = IcpVersion.objects.get(number=1)
    definition_create_draft(model=IcpVersion, actor=editor, copy_from=v1, note="by Rita")
    definition_create_draft(model=IcpVersion, actor=other, copy_from=v1, note="by Otto")
    url = reverse("audit:history", args=["icp"])

    by_version = reader.get(url, {"version": 3}).content.decode()
    by_person = reader.get(url, {"actor": editor.pk}).content.decode()

    assert "Draft v3 created" in by_version and "Draft v2 created" not in by_version
    assert "Draft v2 created" in by_person and "Draft v3 created" not in by_person


def test_history_paginates_newest_first(reader, editor):
    with set_actor(editor):
        for number in range(PAGE_SIZE + 5):
            ObjectionTag.objects.create(key=f"tag-{number}", label=f"Objection {number:03d}")
    url = reverse("audit:history", args=["objection-tags"])

    first = reader.get(url).content.decode()
    second = reader.get(url, {"page": 2}).content.decode()

    assert f"Objection {PAGE_SIZE + 4:03d}" in first
    assert "Objection 000" not in first
    assert "Objection 000" in second
    assert "Page 2 of 2" in second


@pytest.mark.parametrize(
    "params",
    [
        {"version": "' OR 1=1 --"},
        {"actor": "1;DROP TABLE auditlog_logentry"},
        {"version": "%", "actor": "_"},
        {"page": "\\"},
        {"version": "99999999999999999999"},
    ],
)
def test_history_ignores_filters_that_are_not_numbers(reader, editor, params):
    with set_actor(editor):
        RejectionReason.objects.create(key="budget", label="No budget")
    url = reverse("audit:history", args=["rejection-reasons"])

    response = reader.get(url, params)

    assert response.status_code == 200
    assert "No budget" in response.content.decode()


def test_unknown_definition_is_404(reader):
    assert reader.get("/definitions/leads/history/").status_code == 404


def test_history_page_query_count_does_not_grow_with_entries(
    reader, editor, django_assert_max_num_queries
):
    with set_actor(editor):
        for number in range(30):
            RejectionReason.objects.create(key=f"r-{number}", label=f"Reason {number}")
    with django_assert_max_num_queries(15):
        response = reader.get(reverse("audit:history", args=["rejection-reasons"]))
    assert response.status_code == 200


def test_admin_pages_of_definitions_link_their_history(admin_client):
    v1 = IcpVersion.objects.get(number=1)

    change_page = admin_client.get(reverse("admin:leads_icpversion_change", args=[v1.pk]))
    reasons_page = admin_client.get(reverse("admin:leads_rejectionreason_changelist"))
    lead_list = admin_client.get(reverse("admin:leads_lead_changelist"))

    assert f'href="{reverse("audit:history", args=["icp"])}?version=1"' in (
        change_page.content.decode()
    )
    assert "History of changes" in reasons_page.content.decode()
    assert "History of changes" not in lead_list.content.decode()


def test_scoring_model_admin_links_its_history(admin_client):
    from scoring.models import ScoringModel

    model = ScoringModel.objects.get(number=1)
    page = admin_client.get(reverse("admin:scoring_scoringmodel_change", args=[model.pk]))
    assert reverse("audit:history", args=["scoring-model"]) in page.content.decode()
