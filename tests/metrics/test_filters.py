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
