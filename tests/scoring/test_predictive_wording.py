"""The predictive score's reasons in words (issue 19 item 9): no log-odds shown to reps."""

import pytest

from scoring.predictive.wording import chance_effect


@pytest.mark.parametrize(
    ("log_odds", "text"),
    [
        (1.4, "raises the chance a lot"),
        (0.5, "raises the chance"),
        (0.1, "raises the chance slightly"),
        (-0.1, "lowers the chance slightly"),
        (-0.5, "lowers the chance"),
        (-1.0, "lowers the chance a lot"),
    ],
)
def test_a_reason_reads_as_raising_or_lowering_the_chance(log_odds, text):
    assert chance_effect(log_odds, baseline=0.2).text == text


def test_it_says_what_the_reason_alone_does_to_an_average_lead():
    effect = chance_effect(0.8, baseline=0.12)  # odds 0.136 × e^0.8 = 0.304 → 23 %

    assert (effect.average_before, effect.average_after) == (12, 23)
    assert chance_effect(-0.8, baseline=0.12).average_after == 6


def test_an_extreme_baseline_does_not_break_the_sentence():
    assert chance_effect(0.5, baseline=0.0).average_after == 0
    assert chance_effect(-0.5, baseline=1.0).average_after == 100
