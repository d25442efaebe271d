"""ICP insights: win rates aggregated in SQL per attribute (technologies unnested), small groups
hidden, suggestions turned into changes of a draft ICP."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse

from leads.choices import DefinitionStatus
from leads.models import IcpVersion
from scoring.insights import selectors, services
from tests.factories import AccountFactory, LeadFactory, SourceFactory, UserFactory
from tests.metrics.factories import lost, won

pytestmark = pytest.mark.django_db

CLOSED = datetime(2026, 5, 4, tzinfo=UTC)


def deals(n_won: int, n_lost: int, **account) -> None:
    for index in range(n_won + n_lost):
        lead = LeadFactory(account=AccountFactory(**account), seniority="vp")
        (won if index < n_won else lost)(lead=lead, closed_at=CLOSED, created_at=CLOSED)


@pytest.fixture
def evidence():
    """Retail wins 11 of 12 with no criterion; software (10 ICP points) wins 3 of 30;
    healthcare 1 of 2 (too few to judge). Overall 15 / 44."""
    deals(11, 1, industry="Retail", technologies=["shopify", "hubspot"], employees=50)
    deals(3, 27, industry="software", technologies=["hubspot"])
    deals(1, 1, industry="healthcare")


def section(insights, attribute):
    return {s.key: s for s in dict((a, segs) for a, _, segs in insights.sections)[attribute]}


def test_win_rates_per_attribute_are_aggregated_in_sql(evidence, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        insights = selectors.icp_insights()
    assert (insights.closed, insights.won) == (44, 15)
    industry = section(insights, "industry")
    assert (industry["retail"].closed, industry["retail"].won) == (12, 11)
    assert industry["software"].points == 10
    assert industry["software"].criteria == ("Target industry",)
    assert industry["retail"].points == 0
    technologies = section(insights, "technologies")
    assert (technologies["hubspot"].closed, technologies["hubspot"].won) == (42, 14)
    assert (technologies["shopify"].closed, technologies["shopify"].won) == (12, 11)
    assert technologies["hubspot"].points == 10  # "Uses an integrated platform"
    employees = section(insights, "employees")
    assert employees["11–199"].closed == 12 and employees["200–999"].closed == 32
    assert section(insights, "country")["us"].closed == 44
    assert section(insights, "region")["na"].points == 5
    assert section(insights, "seniority")["vp"].points == 10
    assert section(insights, "source")[next(iter(section(insights, "source")))].points is None


def test_segment_counts_are_reused_until_a_deal_closes(evidence, django_assert_num_queries):
    selectors.icp_insights()
    with django_assert_num_queries(4):  # totals, the working ICP and its criteria: no GROUP BY
        again = selectors.icp_insights()
    assert section(again, "industry")["retail"].closed == 12

    won(lead=LeadFactory(account=AccountFactory(industry="Retail")), closed_at=CLOSED)

    fresh = selectors.icp_insights()
    assert (fresh.closed, section(fresh, "industry")["retail"].closed) == (45, 13)


def test_open_deals_and_deals_without_a_lead_do_not_count(evidence):
    from tests.metrics.factories import OpportunityFactory

    OpportunityFactory(lead=LeadFactory(account=AccountFactory(industry="retail")))
    OpportunityFactory(lead=None, status="won", closed_at=CLOSED, created_at=CLOSED)
    assert selectors.icp_insights().closed == 44


def test_suggestions_from_the_evidence(evidence):
    found = selectors.insight_suggestions(selectors.icp_insights())
    keys = [s.key for s in found]
    assert "raise:industry:retail" in keys
    assert "lower:industry:software" in keys
    assert not any("healthcare" in key for key in keys)  # n = 2


def test_the_page_hides_small_groups(evidence, client):
    client.force_login(UserFactory())
    html = client.get(reverse("scoring:insights")).content.decode()
    assert "n too small" in html
    assert "34.1 %" in html  # 15 / 44 overall
    assert "Apply to a draft ICP" not in html  # a viewer changes nothing
    # A suggestion names what it looks at, not the attribute's key.
    assert "<td>Account industry = " in html and "<td>industry = " not in html


@override_settings(INSIGHTS_MIN_CLOSED_DEALS=1)
def test_the_minimum_sample_is_a_setting(evidence):
    keys = [s.key for s in selectors.insight_suggestions(selectors.icp_insights())]
    assert "raise:industry:retail" in keys
    assert selectors.icp_insights().min_closed == 1


def icp_editor():
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="change_icpversion"))
    return user


def test_raise_creates_a_draft_with_a_new_criterion(evidence):
    applied = services.suggestion_apply(key="raise:industry:retail", actor=icp_editor())
    assert applied.created_draft
    draft = applied.draft
    assert draft.status == DefinitionStatus.DRAFT and draft.number == 2
    criterion = draft.criteria.get(name="Account industry: retail")
    assert (criterion.attribute, criterion.values, criterion.points) == ("industry", ["retail"], 10)
    # The ICP in force is untouched.
    assert not IcpVersion.objects.get(number=1).criteria.filter(name__contains="retail").exists()


def test_lower_changes_the_existing_draft(evidence):
    services.suggestion_apply(key="raise:industry:retail", actor=None)
    applied = services.suggestion_apply(key="lower:industry:software", actor=None)
    assert not applied.created_draft and applied.draft.number == 2
    target = applied.draft.criteria.get(name="Target industry")
    # It also matches other industries: only software stops earning its points.
    assert "software" not in target.values and "healthcare" in target.values
    assert target.points == 10
    assert IcpVersion.objects.filter(status=DefinitionStatus.DRAFT).count() == 1


def test_a_band_suggestion_adds_a_range_criterion(evidence):
    with override_settings(INSIGHTS_MIN_CLOSED_DEALS=10):
        keys = [s.key for s in selectors.insight_suggestions(selectors.icp_insights())]
    assert "raise:employees:11–199" in keys
    draft = services.suggestion_apply(key="raise:employees:11–199", actor=None).draft
    criterion = draft.criteria.get(attribute="employees", name__startswith="Account employee")
    assert (criterion.min_value, criterion.max_value) == (11, 199)


def test_a_stale_or_made_up_suggestion_is_refused(evidence):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="no longer applies"):
        services.suggestion_apply(key="raise:industry:software", actor=None)
    assert not IcpVersion.objects.filter(status=DefinitionStatus.DRAFT).exists()


def test_applying_needs_the_icp_permission(evidence, client):
    client.force_login(UserFactory())
    response = client.post(reverse("scoring:insights-apply"), {"key": "raise:industry:retail"})
    assert response.status_code == 403
    assert not IcpVersion.objects.filter(status=DefinitionStatus.DRAFT).exists()


def test_one_click_then_backtest_this_draft(evidence, client):
    client.force_login(icp_editor())
    page = client.get(reverse("scoring:insights")).content.decode()
    assert 'value="raise:industry:retail"' in page
    response = client.post(
        reverse("scoring:insights-apply"), {"key": "raise:industry:retail"}, follow=True
    )
    draft = IcpVersion.objects.get(status=DefinitionStatus.DRAFT)
    html = response.content.decode()
    assert "Backtest this draft" in html
    assert f"{reverse('scoring:backtests')}?icp={draft.pk}" in html


def test_no_closed_deals_no_suggestions(client):
    SourceFactory()
    insights = selectors.icp_insights()
    assert insights.closed == 0 and insights.overall_rate is None
    assert selectors.insight_suggestions(insights) == []
    client.force_login(UserFactory())
    assert "no closed deals yet" in client.get(reverse("scoring:insights")).content.decode()


def test_the_page_takes_one_query_per_attribute(evidence, client, django_assert_max_num_queries):
    client.force_login(UserFactory())
    # Totals, the working ICP and its criteria, one GROUP BY per attribute, session and user.
    with django_assert_max_num_queries(18):
        assert client.get(reverse("scoring:insights")).status_code == 200


def test_only_significant_lifts_are_coloured():
    from scoring.insights.maths import Segment
    from scoring.insights.views import _segment_row

    noise = _segment_row(Segment("industry", "a", "A", 200, 97), overall=0.5, min_closed=5)
    strong = _segment_row(Segment("industry", "b", "B", 200, 150), overall=0.5, min_closed=5)

    assert (noise["lift"], noise["lift_class"]) == ("0.97×", "")
    assert noise["lift_title"].startswith("Not a clear difference")
    assert (strong["lift"], strong["lift_class"]) == ("1.50×", "positive")
