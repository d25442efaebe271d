"""Forms of the handoff workflow: they check the input; the services check the rules."""

from django import forms
from django.contrib.auth import get_user_model

from leads.choices import TouchChannel
from leads.models import ContentAsset, ObjectionTag, RejectionReason, Source
from leads.selectors import OutcomeStatus


class HandoffActionForm(forms.Form):
    # The revision the page was drawn from: a second submission of the same page is refused.
    revision = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class TouchForm(HandoffActionForm):
    channel = forms.ChoiceField(choices=TouchChannel.choices, initial=TouchChannel.CALL)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    objections = forms.ModelMultipleChoiceField(
        queryset=ObjectionTag.objects.filter(is_active=True),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Objections the buyer raised.",
    )
    content_assets = forms.ModelMultipleChoiceField(
        queryset=ContentAsset.objects.all(),
        required=False,
        help_text="Marketing content you shared with the lead.",
        label="Content shared",
    )
    meeting_booked = forms.BooleanField(
        required=False, label="Discovery call booked", help_text="Moves an accepted lead to SQL."
    )


class AcceptForm(HandoffActionForm):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class RejectForm(HandoffActionForm):
    reason = forms.ModelChoiceField(
        queryset=RejectionReason.objects.filter(is_active=True),
        empty_label="Choose a reason…",
        error_messages={"required": "Choose a reason, so marketing learns why."},
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Required for “Other”. Marketing reads this.",
    )


class ReassignForm(HandoffActionForm):
    to_user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), label="Reassign to", empty_label="Choose a rep…"
    )
    note = forms.CharField(required=False)

    def __init__(self, *args, candidates=None, **kwargs):
        """``candidates``: the reps one may choose (``selectors.RepLoad``), each shown with its
        load ("Ana — 7 open / 10")."""
        super().__init__(*args, **kwargs)
        if candidates is not None:
            labels = {rep.user_id: rep.label for rep in candidates}
            self.fields["to_user"].queryset = (
                get_user_model()
                .objects.filter(pk__in=list(labels))
                .order_by("first_name", "username")
            )
            self.fields["to_user"].label_from_instance = lambda user: labels.get(
                user.pk, user.get_full_name() or user.get_username()
            )


class RecycleForm(forms.Form):
    note = forms.CharField(required=False, help_text="Why this lead deserves another chance.")


class OutcomeFilterForm(forms.Form):
    """Filters of marketing's handoff-outcome page (all optional, kept in the URL)."""

    source = forms.ModelChoiceField(queryset=Source.objects.all(), required=False)
    campaign = forms.IntegerField(required=False, min_value=1)
    status = forms.ChoiceField(choices=[("", "Any status"), *OutcomeStatus.CHOICES], required=False)
    assigned_from = forms.DateField(required=False, label="Assigned from")
    assigned_until = forms.DateField(required=False, label="to")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("assigned_from"), cleaned.get("assigned_until")
        if start and end and end < start:
            self.add_error("assigned_until", "The end date is before the start date.")
        return cleaned
