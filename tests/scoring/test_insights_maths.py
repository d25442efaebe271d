"""Wilson intervals, lift and the suggestion rules, without a database."""

import pytest

from scoring.engine import Criterion
from scoring.insights import maths


def test_wilson_interval_matches_hand_computed_values():
    low, high = maths.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    low, high = maths.wilson_interval(0, 10)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
    assert maths.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert maths.wilson_interval(0, 0) is None


def test_wilson_interval_refuses_impossible_counts():
    with pytest.raises(ValueError):
        maths.wilson_interval(11, 10)
    with pytest.raises(ValueError):
        maths.wilson_interval(-1, 10)


def test_lift_against_the_overall_rate():
    assert maths.lift(0.3, 0.2) == pytest.approx(1.5)
    assert maths.lift(0.1, 0.2) == pytest.approx(0.5)
    assert maths.lift(0.3, 0) is None
    assert maths.lift(None, 0.2) is None


def segment(key, closed, won, points=0, **extra):
    return maths.Segment(
        attribute=extra.pop("attribute", "industry"),
        key=key,
        label=key,
        closed=closed,
        won=won,
        points=points,
        **extra,
    )


def test_suggestions_flag_weights_that_disagree_with_the_evidence():
    segments = [
        segment("software", 50, 5, points=10, criteria=("Target industry",)),  # ≤ 21.4 % < 30 %
        segment("retail", 40, 30, points=0),  # ≥ 59.8 % > 30 %
        segment("tiny", 5, 5, points=0),  # n too small
        segment("webinar", 40, 30, points=None, attribute="source"),  # not an ICP attribute
        segment("fintech", 50, 14, points=20),  # 28 %: the interval holds the overall rate
        segment("student", 40, 30, points=0, excluded=True),
        segment("", 40, 30, points=0),  # unknown value: nothing to add a criterion for
        segment("health", 40, 30, points=5),  # already weighted
    ]
    found = maths.suggestions(segments, overall_rate=0.3, min_closed=10)
    assert [(s.kind, s.segment.key) for s in found] == [("raise", "retail"), ("lower", "software")]
    assert found[1].key == "lower:industry:software"
    assert "10 fit points" in found[1].reason


def test_no_suggestion_without_closed_deals():
    assert maths.suggestions([segment("retail", 40, 30)], overall_rate=None, min_closed=10) == []


def test_lowering_halves_the_points():
    assert maths.lowered_points(10) == 5
    assert maths.lowered_points(1) == 0


CRITERIA = [
    Criterion("Mid-market", "employees", (), 200, 5000, 10, False),
    Criterion("Enterprise", "employees", (), 5001, None, 5, False),
    Criterion("Micro", "employees", (), None, 10, 0, True),
    Criterion("Target industry", "industry", ("software", "healthcare"), None, None, 10, False),
]


def test_icp_weight_of_value_and_band_segments():
    assert maths.icp_weight(CRITERIA, "employees", "200–999") == (10, ("Mid-market",), False)
    assert maths.icp_weight(CRITERIA, "employees", "1,000–5,000") == (10, ("Mid-market",), False)
    assert maths.icp_weight(CRITERIA, "employees", "5,001+") == (5, ("Enterprise",), False)
    assert maths.icp_weight(CRITERIA, "employees", "11–199") == (0, (), False)
    assert maths.icp_weight(CRITERIA, "employees", "1–10") == (0, (), True)
    assert maths.icp_weight(CRITERIA, "industry", "software") == (10, ("Target industry",), False)
    assert maths.icp_weight(CRITERIA, "industry", "retail") == (0, (), False)
    assert maths.icp_weight(CRITERIA, "industry", "") == (0, (), False)


@pytest.mark.parametrize(
    ("won", "closed", "overall", "direction"),
    [
        (97, 200, 0.5, ""),  # 0.97× lift, interval 42–55 %: inside the noise, not coloured
        (102, 200, 0.5, ""),  # 1.02×
        (150, 200, 0.5, "higher"),  # 1.5×, interval 69–81 %: all above the overall rate
        (50, 200, 0.5, "lower"),  # 0.5×
        (0, 0, 0.5, ""),  # no deals, no interval
    ],
)
def test_a_lift_is_a_direction_only_when_its_interval_excludes_the_overall_rate(
    won, closed, overall, direction
):
    interval = maths.wilson_interval(won, closed)
    assert maths.lift_direction(interval, overall) == direction
