"""The filters in words: what a totals row adds up."""

from metrics.filters import totals_label


def test_the_totals_row_says_what_it_adds_up():
    assert totals_label({}) == "All sources"
    assert totals_label({"source": ["a"]}) == "1 source"
    assert totals_label({"source": ["a", "b", "c"], "tier": ["A"]}) == "3 sources"
    assert totals_label({"channel": ["email"]}) == "All sources matching the filters"
