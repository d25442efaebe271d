"""The preview's pure pieces: the round robin replayed on plain values, and when fit alone
reaches the handoff threshold."""

import pytest

from leads.lifecycle import Lifecycle, Stage
from leads.playbook import fit_alone_reaches_handoff, threshold_note
from scoring import engine
from scoring.impact import Sample, fit_alone_total, sample_of, zero_engagement
from scoring.impact_spread import RepSlot, spread_handoffs

LIFECYCLE = Lifecycle(
    stages=(
        Stage("lead", "Lead", order=1),
        Stage("mql", "MQL", order=2, trigger_type="score", trigger_score=65, opens_handoff=True),
    )
)


def slot(rep_id, *, region="", tiers=(), capacity=40, open_handoffs=0):
    return RepSlot(rep_id, f"rep {rep_id}", region, tuple(tiers), capacity, open_handoffs)


def new_handoffs(spread) -> dict[int, int]:
    return {share.rep_id: share.new_handoffs for share in spread.shares}


def test_a_burst_goes_round_the_line_evenly():
    spread = spread_handoffs([slot(1), slot(2), slot(3)], [("NA", "A")] * 7)
    assert new_handoffs(spread) == {1: 3, 2: 2, 3: 2}
    assert spread.unassigned == 0


def test_territory_segment_and_capacity_are_honoured():
    line = [
        slot(1, region="NA", capacity=3, open_handoffs=2),  # room for one more
        slot(2, region="EMEA"),
        slot(3, tiers=["B"]),
    ]
    leads = [("NA", "A"), ("NA", "A"), ("EMEA", "A"), ("NA", "B"), ("APAC", "A")]
    spread = spread_handoffs(line, leads)
    # NA/A: rep 1 (then full), then nobody; EMEA/A: rep 2; NA/B: rep 3; APAC/A: nobody.
    assert new_handoffs(spread) == {1: 1, 2: 1, 3: 1}
    assert spread.unassigned == 2
    full = next(share for share in spread.shares if share.rep_id == 1)
    assert (full.open_after, full.at_capacity) == (3, True)


def test_fit_alone_counts_the_engagement_floor():
    icp = engine.IcpSpec(
        version=1,
        criteria=(
            engine.Criterion("Industry", "industry", ("software",), points=40),
            engine.Criterion("Seniority", "seniority", ("vp",), points=20),
            engine.Criterion("Students", "seniority", ("student",), is_exclusion=True),
        ),
        tier_a_min_points=50,
        tier_b_min_points=30,
        tier_c_min_points=10,
    )
    plain = engine.ScoringSpec(version=1, half_life_days=30, rules={})
    floored = engine.ScoringSpec(version=2, half_life_days=30, rules={}, floor=10)
    assert zero_engagement(plain) == 0
    assert fit_alone_total(icp, plain) == 60
    assert fit_alone_total(icp, floored) == 70
    # MQL at 65: the answer the playbook gives too.
    assert not fit_alone_reaches_handoff(LIFECYCLE, fit_alone_total(icp, plain))
    assert fit_alone_reaches_handoff(LIFECYCLE, fit_alone_total(icp, floored))
    assert "without any engagement" in threshold_note(LIFECYCLE, 70.0)


def test_a_large_id_range_is_sampled_in_even_runs():
    assert sample_of(1, 120_000) == Sample()  # small enough: every lead
    sample = sample_of(1, 1_000_000)
    assert sample.step == 17  # ⌈1,000,000 / 60,000⌉
    assert len(sample.ranges) == 50
    read = sum(hi - lo + 1 for lo, hi in sample.ranges)
    assert 1_000_000 / read == pytest.approx(sample.step, rel=0.01)
    assert sample.ranges[0][0] == 1 and sample.ranges[-1][1] <= 1_000_000
    sql, params = sample.sql("s.lead_id")
    assert sql.count("BETWEEN") == 50 and len(params) == 100
