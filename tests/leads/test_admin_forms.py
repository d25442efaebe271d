"""The ICP criterion's admin form: values typed as text (no JSON), closed vocabularies checked
with a message naming what is allowed, and the same list stored as before."""

import pytest

from leads.admin_forms import IcpCriterionForm, closed_keys, split_values
from leads.choices import Seniority
from leads.models import IcpCriterion, IcpVersion


def test_values_split_on_lines_and_commas_trimmed_without_blanks_or_repeats():
    assert split_values(" Software,financial services\n\nHealthcare ,software\r\n") == [
        "Software",
        "financial services",
        "Healthcare",
    ]
    assert split_values("") == [] and split_values(None) == []


def test_closed_values_match_a_key_or_a_label_ignoring_case():
    assert closed_keys(Seniority, ["VP", "c-level / owner", "Director", "boss"]) == (
        ["vp", "executive", "director"],
        ["boss"],
    )


@pytest.fixture
def draft(db):
    return IcpVersion.objects.create(number=99)


def form(draft, **fields):
    data = {"name": "Criterion", "points": 10, "version": draft.pk, **fields}
    return IcpCriterionForm(data, instance=IcpCriterion(version=draft))


def test_a_typed_list_is_stored_as_the_json_list_and_shown_back_as_text(draft):
    typed = form(draft, attribute="industry", values="Software, Financial services\nHealthcare")

    assert typed.is_valid(), typed.errors
    criterion = typed.save()

    assert criterion.values == ["financial services", "healthcare", "software"]
    shown = IcpCriterionForm(instance=criterion)["values"].value()
    assert shown == "financial services, healthcare, software"
    again = form(draft, attribute="industry", values=shown, name="Again")
    assert again.is_valid() and again.cleaned_data["values"] == criterion.values


def test_regions_and_seniorities_are_taken_by_name_and_stored_by_key(draft):
    regions = form(draft, attribute="region", values="North America, emea")
    people = form(draft, attribute="seniority", values="VP\nC-level / owner", name="People")

    assert regions.is_valid() and people.is_valid(), (regions.errors, people.errors)
    assert regions.save().values == ["emea", "na"]
    assert people.save().values == ["executive", "vp"]


def test_an_unknown_value_of_a_closed_list_is_refused_naming_the_allowed_ones(draft):
    typed = form(draft, attribute="seniority", values="VP, Boss, intern")

    assert not typed.is_valid()
    message = " ".join(typed.errors["values"])
    assert "'Boss', 'intern' are not known" in message
    assert "VP (vp)" in message and "Student (student)" in message
    assert not draft.criteria.exists()


def test_a_json_list_typed_as_the_admin_used_to_ask_is_read_as_its_items(draft):
    typed = form(draft, attribute="region", values='["NA", "apac"]')

    assert typed.is_valid(), typed.errors
    assert typed.save().values == ["apac", "na"]


def test_a_list_attribute_needs_values_and_a_range_needs_numbers(draft):
    empty = form(draft, attribute="industry", values=" , \n")
    words = form(draft, attribute="employees", min_value="two hundred", name="Size")
    ranged = form(draft, attribute="employees", min_value="200", max_value="5000", name="Mid")

    assert not empty.is_valid()
    assert "Account industry needs at least one value." in empty.errors["values"]
    assert not words.is_valid() and "Enter a number." in words.errors["min_value"]
    assert ranged.is_valid(), ranged.errors
    assert (ranged.save().min_value, ranged.instance.values) == (200, [])
