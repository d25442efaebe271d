"""The backtest's maths on hand-computed fixtures, without a database."""

import random

import pytest

from scoring import engine
from scoring.backtest import simulate, specs

SPEC = engine.ScoringSpec(
    version=1,
    half_life_days=10,
    rules={"demo_request": engine.KindRule(30, 1), "page_view": engine.KindRule(10, 2)},
    cap=100,
)
ICP = engine.IcpSpec(
    version=1,
    criteria=(engine.Criterion("Software", "industry", ("software",), points=40),),
    tier_a_min_points=35,
    tier_b_min_points=20,
    tier_c_min_points=10,
)
SOFTWARE_LEAD = engine.LeadFacts(
    person=engine.PersonFacts(), account=engine.AccountFacts(industry="Software")
)
# Three page views on day 100 (cap 2 → 20 points), a demo request on day 110 (30 points).
COUNTS = {("page_view", 100): 3, ("demo_request", 110): 1}


def replay(**overrides):
    arguments = {
        "created_day": 95,
        "as_of_day": 120,
        "mql_threshold": 65,
        "cutoff_day": None,
    } | overrides
    return simulate.replay_lead(ICP, SPEC, SOFTWARE_LEAD, COUNTS, **arguments)


def test_replay_finds_the_first_day_the_total_reached_the_threshold():
    # Day 95: 40 (fit only); day 100: 40 + 20 = 60; day 110: 40 + 10 (page views halved) + 30
    # = 80 ≥ 65; day 120: 40 + 5 + 15 = 60.
    result = replay()
    assert result.fit.points == 40 and result.tier == "A"
    assert result.first_mql_day == 110
    assert result.peak_total == 80
    assert result.total_today == 60
    assert result.engagement_today == 20
    assert result.is_mql_eligible(65) is False  # 60 today
    assert result.reached_threshold(65) is True


def test_one_engagement_series_serves_two_icps():
    # Same events, same model: engagement per day 0, 20, 40, 20 (see above); a 20-point fit
    # peaks at 60 on day 110 and never reaches 65, the 40-point fit does on that day.
    series = simulate.engagement_series(SPEC, "", COUNTS, created_day=95, as_of_day=120)
    smaller = engine.IcpSpec(
        version=2,
        criteria=(engine.Criterion("Software", "industry", ("software",), points=20),),
        tier_a_min_points=35,
        tier_b_min_points=20,
        tier_c_min_points=10,
    )
    replays = [
        simulate.replay_with_fit(
            engine.fit(icp, SOFTWARE_LEAD), series, as_of_day=120, mql_threshold=65
        )
        for icp in (ICP, smaller)
    ]
    assert [(r.tier, r.peak_total, r.first_mql_day, r.total_today) for r in replays] == [
        ("A", 80, 110, 60),
        ("B", 60, None, 40),
    ]


def test_the_peak_judged_against_the_outcome_stops_at_the_handoff_day():
    result = replay(cutoff_day=105)
    assert result.peak_total == 60
    assert result.reached_threshold(65) is False
    assert result.first_mql_day == 110  # the MQL week does not depend on the cutoff


def test_an_excluded_lead_never_becomes_an_mql():
    icp = engine.IcpSpec(
        version=2,
        criteria=(
            *ICP.criteria,
            engine.Criterion("No software", "industry", ("software",), is_exclusion=True),
        ),
        tier_a_min_points=35,
        tier_b_min_points=20,
        tier_c_min_points=10,
    )
    result = simulate.replay_lead(
        icp, SPEC, SOFTWARE_LEAD, COUNTS, created_day=95, as_of_day=120, mql_threshold=65
    )
    assert result.tier == "D"
    assert result.first_mql_day is None
    assert result.reached_threshold(65) is False and result.is_mql_eligible(65) is False


def test_events_after_the_as_of_day_are_ignored():
    result = simulate.replay_lead(
        ICP, SPEC, SOFTWARE_LEAD, COUNTS, created_day=95, as_of_day=105, mql_threshold=65
    )
    assert result.first_mql_day is None
    assert result.total_today == pytest.approx(40 + 20 * 2 ** (-0.5), abs=0.01)


def test_without_a_threshold_nothing_crosses():
    assert replay(mql_threshold=None).first_mql_day is None


def test_replay_agrees_with_the_engine_day_by_day():
    rng = random.Random(7)
    kinds = sorted(SPEC.rules)
    for _ in range(30):
        events = [(rng.choice(kinds), rng.randint(0, 60)) for _ in range(rng.randint(0, 12))]
        counts = engine.daily_counts(events)
        as_of = 60
        result = simulate.replay_lead(
            ICP, SPEC, SOFTWARE_LEAD, counts, created_day=0, as_of_day=as_of, mql_threshold=65
        )
        days = sorted({0, as_of, *(day for _, day in events)})
        totals = {
            day: engine.score_lead(
                ICP, SPEC, SOFTWARE_LEAD, [e for e in events if e[1] <= day], as_of_day=day
            ).total
            for day in days
        }
        today = engine.score_lead(ICP, SPEC, SOFTWARE_LEAD, events, as_of_day=as_of)
        assert result.total_today == today.total
        assert result.grade_today == today.grade
        assert result.peak_total == pytest.approx(max(totals.values()), abs=0.011)
        crossed = [day for day in days if totals[day] >= 65]
        assert result.first_mql_day == (crossed[0] if crossed else None)


def test_weeks_start_on_monday():
    assert simulate.week_start(4) == 4  # 1970-01-05, a Monday
    assert simulate.week_start(10) == 4  # the Sunday after
    assert simulate.week_start(11) == 11
    assert simulate.week_start(3) == -3  # Sunday 1970-01-04 belongs to the week of Dec 29
    assert simulate.week_starts(11, weeks=3) == [-3, 4, 11]


def test_weekly_counts_count_first_days_per_week_and_drop_the_rest():
    assert simulate.weekly_counts([4, 10, 11, None, 30, -100], [4, 11]) == [2, 1]


def test_roc_auc_is_the_mann_whitney_statistic():
    assert simulate.roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    # Ties count half: (0.5 + 0 + 1 + 1) / 4.
    assert simulate.roc_auc([1, 1, 2, 3], [False, True, False, True]) == 0.625
    assert simulate.roc_auc([1, 2], [True, True]) is None
    assert simulate.roc_auc([3, 2, 1], [True, False, False]) == 1.0
    with pytest.raises(ValueError):
        simulate.roc_auc([1], [True, False])


def test_precision_and_recall_at_the_threshold():
    result = simulate.classify([True, True, False, False, True], [True, False, True, False, True])
    assert (result.true_positives, result.false_positives) == (2, 1)
    assert (result.false_negatives, result.true_negatives) == (1, 1)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(2 / 3)
    nothing_flagged = simulate.classify([False], [True])
    assert nothing_flagged.precision is None and nothing_flagged.recall == 0


def test_conversion_per_score_band():
    bands = simulate.band_rates(
        [5, 25, 39.99, 40, 65, 120, -3], [False, True, False, True, True, False, True]
    )
    assert [(b.label, b.leads, b.won) for b in bands] == [
        ("0–20", 2, 1),
        ("20–40", 2, 1),
        ("40–60", 1, 1),
        ("60–80", 1, 1),
        ("80–100", 0, 0),
        ("100+", 1, 0),
    ]
    assert bands[1].rate == 0.5 and bands[4].rate is None


def test_outcome_metrics_count_the_wins_a_definition_misses():
    metrics = simulate.outcome_metrics(
        [80, 70, 30, 20], [True, True, False, False], [True, False, True, False]
    )
    assert metrics.missed_wins == 1
    assert metrics.won == 2 and metrics.leads == 4
    assert metrics.auc == 0.75


def test_specs_survive_a_round_trip_through_json():
    assert specs.scoring_from_json(specs.scoring_to_json(SPEC)) == SPEC
    assert specs.icp_from_json(specs.icp_to_json(ICP)) == ICP
    assert specs.fingerprint(specs.icp_to_json(ICP)) == specs.fingerprint(specs.icp_to_json(ICP))
