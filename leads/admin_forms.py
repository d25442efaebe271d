"""Admin forms for the definitions, so ops admins edit them in words rather than JSON.

An ICP criterion stores its values as a JSON list; the admin shows them as text ("software,
financial services", one per line or separated by commas) and takes a closed vocabulary
(regions, seniorities, account signals) by its key or its label, refusing anything else with the
values it accepts."""

import json
import re

from django import forms
from django.db.models import TextChoices

from leads.choices import AccountSignal, CriterionAttribute, Region, Seniority
from leads.models import IcpCriterion

# Attributes whose values come from a closed list: a typo there would silently never match.
CLOSED_VALUES: dict[str, type[TextChoices]] = {
    CriterionAttribute.REGION: Region,
    CriterionAttribute.SENIORITY: Seniority,
    CriterionAttribute.SIGNALS: AccountSignal,
}

_SEPARATORS = re.compile(r"[,\n\r]+")


def split_values(text: str) -> list[str]:
    """Values typed one per line or separated by commas, trimmed, blanks and repeats dropped,
    in the order typed. A JSON list of texts, as the admin used to ask for, is still read as
    its items rather than as one odd value."""
    text = text or ""
    try:
        listed = json.loads(text) if text.lstrip().startswith("[") else None
    except ValueError:
        listed = None
    if isinstance(listed, list) and all(isinstance(item, str) for item in listed):
        parts = listed
    else:
        parts = _SEPARATORS.split(text)
    # Matching ignores case, so "Software" and "software" are one value: the first spelling stays.
    values: dict[str, str] = {}
    for part in parts:
        if value := part.strip():
            values.setdefault(value.lower(), value)
    return list(values.values())


def closed_keys(choices: type[TextChoices], values: list[str]) -> tuple[list[str], list[str]]:
    """(keys, unknown): each value matched to a choice by key or label, ignoring case."""
    lookup = {}
    for key, label in choices.choices:
        lookup[label.lower()] = key
        lookup[key.lower()] = key
    keys = [lookup[value.lower()] for value in values if value.lower() in lookup]
    unknown = [value for value in values if value.lower() not in lookup]
    return list(dict.fromkeys(keys)), unknown


def allowed_text(choices: type[TextChoices]) -> str:
    return ", ".join(f"{label} ({key})" for key, label in choices.choices)


class ValuesField(forms.Field):
    """A list of texts edited as one text box: the stored list is shown comma-separated."""

    widget = forms.Textarea(attrs={"rows": 2, "cols": 32})

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, (list, tuple)):
            return [str(item) for item in value]
        return split_values(value)


VALUES_HELP = (
    "One per line or separated by commas; case does not matter. Regions, seniorities and "
    "signals by their name or key: "
    + "; ".join(
        f"{CriterionAttribute(attribute).label}: {allowed_text(choices)}"
        for attribute, choices in CLOSED_VALUES.items()
    )
    + ". Leave empty for a size or revenue range."
)


class IcpCriterionForm(forms.ModelForm):
    values = ValuesField(required=False, label="Values", help_text=VALUES_HELP)

    class Meta:
        model = IcpCriterion
        fields = ("name", "attribute", "values", "min_value", "max_value", "points", "is_exclusion")
        # Ranges are counts of employees or dollars: whole, non-negative numbers.
        widgets = {
            "min_value": forms.NumberInput(attrs={"min": 0, "step": 1}),
            "max_value": forms.NumberInput(attrs={"min": 0, "step": 1}),
        }
        help_texts = {
            "min_value": "Employee count or annual revenue in USD (inclusive); empty: no minimum.",
            "max_value": "Inclusive; empty: no maximum.",
        }

    def clean(self):
        cleaned = super().clean()
        choices = CLOSED_VALUES.get(cleaned.get("attribute"))
        values = cleaned.get("values") or []
        if choices is not None and values:
            keys, unknown = closed_keys(choices, values)
            if unknown:
                self.add_error(
                    "values",
                    f"{CriterionAttribute(cleaned['attribute']).label}: "
                    f"{', '.join(repr(value) for value in unknown)} "
                    f"{'is' if len(unknown) == 1 else 'are'} not known. "
                    f"Use one of: {allowed_text(choices)}.",
                )
            else:
                cleaned["values"] = keys
        return cleaned
