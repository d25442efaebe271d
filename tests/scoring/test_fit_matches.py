"""A score row keeps which ICP criteria its lead matched: a new ICP version that tests the same
things (other points, exclusions or tier thresholds) refits from the score rows alone, and
scores exactly as the engine does from the lead's facts."""

import dataclasses

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from leads.models import Account, IcpVersion, Lead
from leads.selectors import icp_in_force
from scoring import bulk, engine, services
from scoring.models import LeadScoreState, ScoringModel
from scoring.selectors import icp_spec, lead_facts
from tests.scoring.test_bulk_equivalence import (
    AS_OF_DAY,
    SETTINGS,
    account_rows,
    bulk_score,
    icp_specs,
    lead_rows,
    load,
    scores_by_engine,
    scores_in_database,
    scoring_specs,
)
from tests.scoring.test_publish_rescore import ACCOUNTS, FIRST, ICP
from tests.scoring.test_publish_rescore import lead_rows as sample_leads

SOFTWARE_EXEC = engine.LeadFacts(
    engine.PersonFacts(seniority="executive", title="CEO", country="US"),
    engine.AccountFacts(industry="software", employees=200),
)


@st.composite
def same_tests_other_points(draw, icp: engine.IcpSpec) -> engine.IcpSpec:
    """The ICP with new points, exclusions and tier thresholds, its criteria testing the same
    things, listed in any order (a copied version may list them in another), renamed."""
    criteria = []
    for criterion in icp.criteria:
        excluded = draw(st.booleans()) and draw(st.booleans())
        criteria.append(
            dataclasses.replace(
                criterion,
                name=criterion.name + "'",
                is_exclusion=excluded,
                points=0 if excluded else draw(st.integers(-20, 40)),
            )
        )
    c, b, a = draw(st.integers(0, 30)), draw(st.integers(1, 30)), draw(st.integers(1, 30))
    listed = draw(st.permutations(criteria))
    return engine.IcpSpec(icp.version + 1, tuple(listed), c + b + a, c + b, c)


def test_the_conditions_key_ignores_order_names_points_and_exclusion_not_what_is_tested():
    key = engine.conditions_key(ICP)
    renamed = engine.IcpSpec(
        2,
        tuple(
            dataclasses.replace(c, name="x", points=c.points + 5, is_exclusion=not c.is_exclusion)
            for c in ICP.criteria
        ),
        90,
        50,
        1,
    )
    reordered = dataclasses.replace(ICP, criteria=ICP.criteria[::-1])
    assert engine.conditions_key(renamed) == engine.conditions_key(reordered) == key
    assert 0 <= key < 2**63
    other_values = dataclasses.replace(ICP.criteria[0], values=("software", "retail"))
    for criteria in (
        (other_values, *ICP.criteria[1:]),
        ICP.criteria[:2],
        (*ICP.criteria, engine.Criterion("Big", "employees", min_value=500.0, points=5)),
    ):
        assert engine.conditions_key(dataclasses.replace(ICP, criteria=criteria)) != key
    ranged = engine.Criterion("Big", "employees", min_value=500.0, points=5)
    assert engine.conditions_key(
        dataclasses.replace(ICP, criteria=(ranged,))
    ) != engine.conditions_key(
        dataclasses.replace(ICP, criteria=(dataclasses.replace(ranged, min_value=501.0),))
    )


def test_more_criteria_than_a_mask_holds_have_no_key():
    criterion = engine.Criterion("Software", "industry", ("software",), points=1)
    icp = dataclasses.replace(ICP, criteria=(criterion,) * engine.MATCH_BITS)
    assert engine.conditions_key(icp) is not None
    assert engine.conditions_key(dataclasses.replace(icp, criteria=(criterion,) * 64)) is None


def test_the_mask_holds_each_matched_criterion_and_gives_the_fit_under_new_points():
    matches = engine.criteria_matched(ICP, SOFTWARE_EXEC)
    assert matches == 0b011  # software, executive; not a student
    assert engine.fit_from_matches(ICP, matches) == (40, False)
    students_excluded_execs_penalised = engine.IcpSpec(
        2,
        (
            dataclasses.replace(ICP.criteria[0], points=10),
            dataclasses.replace(ICP.criteria[1], is_exclusion=True, points=0),
            ICP.criteria[2],
        ),
        30,
        20,
        10,
    )
    assert engine.fit_from_matches(students_excluded_execs_penalised, matches) == (10, True)
    # Each criterion keeps its bit when the criteria are listed in another order.
    listed_backwards = dataclasses.replace(ICP, criteria=ICP.criteria[::-1])
    assert engine.match_bits(listed_backwards) == engine.match_bits(ICP)[::-1]
    assert engine.criteria_matched(listed_backwards, SOFTWARE_EXEC) == matches


@SETTINGS
@given(data=st.data(), icp=icp_specs, account=account_rows, lead=lead_rows)
def test_the_fit_from_a_mask_is_the_engine_fit_under_any_icp_testing_the_same_things(
    data, icp, account, lead
):
    facts = engine.LeadFacts(
        engine.PersonFacts(
            seniority=lead["seniority"],
            title=lead["title"],
            country=account["country"] or lead["country"],
        ),
        None
        if lead["account"] is None
        else engine.AccountFacts(
            industry=account["industry"],
            employees=account["employees"],
            annual_revenue=account["annual_revenue"],
            region=account["region"],
            technologies=frozenset(account["technologies"]),
            signals=frozenset(account["signals"]),
        ),
    )
    newer = data.draw(same_tests_other_points(icp))
    matches = engine.criteria_matched(icp, facts)
    for version in (icp, newer):
        fit = engine.fit(version, facts)
        assert engine.fit_from_matches(version, matches) == (fit.points, fit.excluded)


# --- In the database ----------------------------------------------------------------------


def publish(leads, icp, *, icp_version_id, spec=FIRST):
    """A publish's bucket over the leads' range, as a worker runs it."""
    model_id = ScoringModel.objects.get(number=1).pk
    return bulk.bring_up_to_date(
        leads[0].pk,
        leads[-1].pk,
        icp=icp,
        icp_version_id=icp_version_id,
        spec=spec,
        model_id=model_id,
        keep_sums_of=[model_id],
        as_of_day=AS_OF_DAY,
    )


@pytest.mark.django_db
@SETTINGS
@given(
    data=st.data(),
    icp=icp_specs,
    spec=scoring_specs(),
    accounts=st.lists(account_rows, max_size=4),
    leads=st.lists(lead_rows, min_size=1, max_size=6),
    account_fits=st.booleans(),
)
def test_a_refit_from_the_masks_scores_exactly_like_the_engine(
    data, icp, spec, accounts, leads, account_fits
):
    newer = data.draw(same_tests_other_points(icp))
    with transaction.atomic():
        created = load(accounts, leads)
        bulk_score(created, icp, spec, account_fits=account_fits)
        icp_id = IcpVersion.objects.get(number=1).pk
        lo, hi = created[0].pk, created[-1].pk
        refitted = bulk.refit_from_matches(
            lo, hi, icp=newer, icp_version_id=icp_id + 1000, spec=spec
        )
        assert refitted == len(created)
        assert scores_in_database(created) == scores_by_engine(created, newer, spec)
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_points_only_publish_reads_no_lead_and_no_account():
    leads = load(ACCOUNTS, sample_leads(24))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    # Execs count for more, students are no longer excluded but cost points, higher bars.
    newer = engine.IcpSpec(
        2,
        (
            ICP.criteria[0],
            dataclasses.replace(ICP.criteria[1], points=30),
            dataclasses.replace(ICP.criteria[2], is_exclusion=False, points=-10),
        ),
        50,
        30,
        15,
    )
    with CaptureQueriesContext(connection) as queries:
        assert publish(leads, newer, icp_version_id=icp_id + 1000) == len(leads)
    statements = [query["sql"] for query in queries.captured_queries]
    lead_table, account_table = Lead._meta.db_table, Account._meta.db_table
    assert not [sql for sql in statements if account_table in sql or "accountfit" in sql]
    # The leads are counted (every one has its score row) and written where their tier
    # changed, never read for their facts.
    lead_statements = [sql.strip() for sql in statements if lead_table in sql]
    writes = [sql for sql in lead_statements if sql.startswith(f"UPDATE {lead_table} SET tier")]
    assert writes
    assert [sql for sql in lead_statements if sql not in writes] == [
        f"SELECT COUNT(*) FROM {lead_table} WHERE id BETWEEN {leads[0].pk} AND {leads[-1].pk}"
    ]
    assert scores_in_database(leads) == scores_by_engine(leads, newer, FIRST)
    assert LeadScoreState.objects.filter(icp_version_id=icp_id + 1000).count() == len(leads)


@pytest.mark.django_db
def test_rows_without_a_mask_or_under_other_criteria_are_refitted_from_their_facts():
    leads = load(ACCOUNTS, sample_leads(12))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    # A lead's row fitted before masks were kept, and another's facts changed since (its mask
    # is rewritten by the incremental rescore, which the publish then finds current).
    LeadScoreState.objects.filter(lead_id=leads[0].pk).update(fit_matches=None, fit_conditions=None)
    newer = engine.IcpSpec(2, ICP.criteria, 40, 25, 15)
    publish(leads, newer, icp_version_id=icp_id + 1000)
    assert scores_in_database(leads) == scores_by_engine(leads, newer, FIRST)
    # A version that tests something else: every row from facts, with a mask of its criteria.
    broader = dataclasses.replace(
        newer,
        criteria=(
            dataclasses.replace(ICP.criteria[0], values=("software", "retail")),
            *ICP.criteria[1:],
        ),
    )
    publish(leads, broader, icp_version_id=icp_id + 2000)
    assert scores_in_database(leads) == scores_by_engine(leads, broader, FIRST)
    assert set(LeadScoreState.objects.values_list("fit_conditions", flat=True)) == {
        engine.conditions_key(broader)
    }


@pytest.mark.django_db
def test_the_engine_path_keeps_the_mask_a_later_publish_refits_from():
    leads = load(ACCOUNTS, sample_leads(4))
    Lead.objects.filter(pk=leads[0].pk).update(seniority="student")
    services.lead_rescore(lead_id=leads[0].pk)  # under the ICP in force, by the engine
    in_force = icp_in_force(at=timezone.now())
    icp = icp_spec(in_force)
    state = LeadScoreState.objects.get(lead_id=leads[0].pk)
    facts = lead_facts(Lead.objects.select_related("account").get(pk=leads[0].pk))
    assert (state.fit_conditions, state.fit_matches) == (
        engine.conditions_key(icp),
        engine.criteria_matched(icp, facts),
    )
    assert state.fit_matches
    doubled = dataclasses.replace(
        icp, criteria=tuple(dataclasses.replace(c, points=2 * c.points) for c in icp.criteria)
    )
    assert (
        bulk.refit_from_matches(
            leads[0].pk, leads[0].pk, icp=doubled, icp_version_id=in_force.pk + 1000, spec=FIRST
        )
        == 1
    )
    fit = engine.fit(doubled, facts)
    state.refresh_from_db()
    assert (state.fit_points, state.fit_excluded, state.tier) == (
        fit.points,
        fit.excluded,
        fit.tier,
    )


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_a_refit_from_facts_tests_the_criteria_once_per_lead():
    """The mask is computed in a subquery the planner may not merge into the refit: merged,
    each criterion's points read a bit of it and computed it again (a bucket's refit took
    ~3 s instead of ~0.3 s at a million leads)."""
    leads = load(ACCOUNTS, sample_leads(6))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    plans = []

    def explain(execute, sql, params, many, context):
        if sql.lstrip().startswith("WITH refit"):
            context["cursor"].execute(f"EXPLAIN (VERBOSE) {sql}", params)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        bulk.refit_in_sql(
            leads[0].pk, leads[-1].pk, icp=ICP, icp_version_id=icp_id + 1000, spec=FIRST
        )
    (plan,) = plans
    assert "Subquery Scan on m" in plan
    # The industry criterion's test appears once in the plan: in the mask.
    assert plan.count("'software'") == 1, plan


@pytest.mark.django_db
@pytest.mark.parametrize("account_fits", [False, True])
def test_an_icp_with_more_criteria_than_a_mask_holds_refits_from_facts_without_a_mask(
    account_fits,
):
    """64 criteria: no key, no mask; the refit computes points and exclusion from the criteria
    themselves, as the engine does, and a later publish refits these rows from their facts."""
    padding = tuple(
        engine.Criterion(f"Region {n}", "region", (f"r{n}",), points=1)
        for n in range(64 - len(ICP.criteria))
    )
    many = dataclasses.replace(ICP, criteria=(*ICP.criteria, *padding))
    assert engine.conditions_key(many) is None
    leads = load(ACCOUNTS, sample_leads(8))
    bulk_score(leads, many, FIRST, account_fits=account_fits)
    assert scores_in_database(leads) == scores_by_engine(leads, many, FIRST)
    assert set(LeadScoreState.objects.values_list("fit_matches", "fit_conditions")) == {
        (None, None)
    }
    icp_id = IcpVersion.objects.get(number=1).pk
    assert (
        bulk.refit_from_matches(
            leads[0].pk, leads[-1].pk, icp=ICP, icp_version_id=icp_id + 1000, spec=FIRST
        )
        == 0
    )
