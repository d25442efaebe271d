"""The filters in words: what a totals row adds up."""

from metrics.filters import totals_label


def test_an_unfiltered_total_adds_up_all_sources():
    assert totals_label({}) == "All sources"
    assert totals_label({"source": [], "channel": []}) == "All sources"


def test_a_filtered_total_names_its_filters():
    assert totals_label({"source": ["Webinar", "Paid social"]}) == (
        "Total (filtered: Webinar, Paid social)"
    )
    assert totals_label({"source": ["Webinar"], "tier": ["A", "B"]}) == (
        "Total (filtered: Webinar · tier A/B)"
    )
    assert totals_label({"channel": ["email"]}) == "Total (filtered: E-mail)"


def test_owner_choices_are_reps_and_whoever_owns_rows_read_in_a_fixed_number_of_queries(
    db, django_assert_num_queries
):
    """Reps, and any user who owns a lead or an opportunity or is assigned a handoff (inactive
    importers included), nobody else; found by skipping through each owner index, so the
    queries do not grow with the rows (EXISTS per user read every lead at a million)."""
    from leads.models import Handoff, Opportunity
    from metrics.filters import owner_choices
    from tests.factories import LeadFactory, SalesRepFactory, UserFactory

    rep = SalesRepFactory().user
    lead_owner = UserFactory(is_active=False)
    deal_owner, assignee, bystander = UserFactory(), UserFactory(), UserFactory()
    leads = LeadFactory.create_batch(5, owner=lead_owner)
    Opportunity.objects.create(name="Deal", lead=leads[0], owner=deal_owner, amount=1000)
    Handoff.objects.create(lead=leads[1], stage="mql", assignee=assignee)
    with django_assert_num_queries(4):  # three owner columns, then the users
        chosen = set(owner_choices())
    assert chosen == {rep, lead_owner, deal_owner, assignee}
    assert bystander not in chosen
