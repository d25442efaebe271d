"""Forms of the pipeline review page: they check the input; the services check the rules."""

from django import forms
from django.contrib.auth import get_user_model

from metrics.meeting import STALL_DAYS_DEFAULT, STALL_DAYS_MAX


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


class ActionItemForm(forms.Form):
    text = forms.CharField(
        max_length=300,
        label="Action",
        error_messages={"required": "Say what the action is."},
        widget=forms.TextInput(attrs={"placeholder": "What will be done, concretely"}),
    )
    owner = UserChoiceField(
        queryset=get_user_model().objects.none(),
        label="Owner",
        empty_label="Who owns it…",
        error_messages={"required": "Every action needs an owner."},
    )
    due_on = forms.DateField(
        label="Due",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={
            "required": "Give the action a due date.",
            "invalid": "Enter the due date as YYYY-MM-DD.",
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = (
            get_user_model()
            .objects.filter(is_active=True)
            .order_by("first_name", "last_name", "username")
        )


class StallDaysForm(forms.Form):
    """How many days without a stage change make a lead "stalled" (``?stall_days=``); also
    carried by the freeze button, so the frozen figures are those on screen."""

    stall_days = forms.IntegerField(
        min_value=1,
        max_value=STALL_DAYS_MAX,
        required=False,
        label="Stalled after (days)",
        error_messages={
            "invalid": "Stalled after: a whole number of days.",
            "min_value": "Stalled after: at least 1 day.",
            "max_value": f"Stalled after: at most {STALL_DAYS_MAX} days.",
        },
    )

    def stall_days_or_default(self) -> int:
        if self.is_valid() and self.cleaned_data["stall_days"] is not None:
            return self.cleaned_data["stall_days"]
        return STALL_DAYS_DEFAULT
