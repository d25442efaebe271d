"""Forms of the goals editor: they parse what an admin typed; the models and services check the
rules (thresholds in order, a scope that names what it needs)."""

from django import forms
from django.contrib.auth import get_user_model

from leads.models import SalesRep, Source
from metrics.goal_services import GOAL_FIELDS
from metrics.goals import METRICS, PERIOD_KINDS
from metrics.meeting_forms import UserChoiceField
from metrics.models import Goal

UNITS = {"count": "", "money": "$", "percent": "%", "hours": "business hours"}


class GoalForm(forms.ModelForm):
    """One goal. Values are written in the metric's unit: 30 for 30 %, 4 for 4 business hours,
    250000 for $250,000."""

    class Meta:
        model = Goal
        fields = tuple(name for name in GOAL_FIELDS if name != "order")
        field_classes = {"team_manager": UserChoiceField, "rep": UserChoiceField}
        labels = {
            "side": "Whose commitment",
            "channel_group": "Source group",
            "team_manager": "Team of",
            "amber_at": "Amber at",
            "red_at": "Red at",
            "floor": "Floor / ceiling",
        }
        error_messages = {
            "metric": {"required": "Pick what the goal measures."},
            "target": {"required": "Give the goal a target."},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True).order_by("first_name", "username")
        managers = SalesRep.objects.filter(manager__isnull=False).values("manager_id")
        self.fields["team_manager"].queryset = users.filter(pk__in=managers)
        self.fields["rep"].queryset = users.filter(sales_rep__isnull=False)
        self.fields["source"].queryset = Source.objects.order_by("name")
        self.fields["side"].choices = [("", "Usual owner"), *self.fields["side"].choices[1:]]
        self.fields["direction"].choices = [("", "Usual"), *self.fields["direction"].choices[1:]]
        for name in ("target", "amber_at", "red_at", "floor"):
            self.fields[name].widget.attrs.update({"step": "any", "inputmode": "decimal"})


class BaseGoalFormSet(forms.BaseFormSet):
    def goals(self) -> list[Goal]:
        """The goals the admin filled in (blank extra rows and rows marked for removal left
        out), unsaved, in the order shown."""
        kept = []
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            kept.append(form.save(commit=False))
        return kept

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        if not self.goals():
            raise forms.ValidationError("Set at least one goal.")


GoalFormSet = forms.formset_factory(
    GoalForm, formset=BaseGoalFormSet, extra=2, can_delete=True, max_num=40, validate_max=True
)


class GoalSetForm(forms.Form):
    note = forms.CharField(
        required=False,
        label="What changed and why",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown with the goals to both teams.",
    )


def metric_help() -> list[tuple[str, str, str]]:
    """(label, unit, definition) of every metric, for the editor's legend."""
    return [(spec.label, UNITS[spec.unit], spec.definition) for spec in METRICS]


PERIOD_KIND_CHOICES = PERIOD_KINDS
