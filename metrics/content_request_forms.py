"""Forms of the content requests: they check the input; ``metrics.content_requests`` checks
the rules (who may, what a request can move to)."""

from django import forms

from leads.models import ContentAsset, ObjectionTag
from metrics.models import ContentRequest

Status = ContentRequest.Status


class ContentRequestForm(forms.Form):
    """Sales, on a handoff's page: the asset wanted."""

    title = forms.CharField(
        max_length=200,
        label="Content you need",
        help_text="e.g. “Case study: a hospital like this one”.",
        error_messages={"required": "Say what content is wanted."},
    )
    objection = forms.ModelChoiceField(
        queryset=ObjectionTag.objects.filter(is_active=True),
        required=False,
        empty_label="No objection in particular",
        label="Objection it should answer",
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="What the buyer asked; marketing reads this.",
    )

    def __init__(self, *args, **kwargs):
        # Its own ids: the handoff page's other forms have a "note" too.
        kwargs.setdefault("auto_id", "id_request_%s")
        super().__init__(*args, **kwargs)

    def clean_title(self) -> str:
        title = " ".join(self.cleaned_data["title"].split())
        if not title:
            raise forms.ValidationError("Say what content is wanted.")
        return title


class ContentRequestUpdateForm(forms.Form):
    """Marketing, on the list: move a request on or close it."""

    status = forms.ChoiceField(
        choices=[
            (Status.IN_PROGRESS, "In progress"),
            (Status.DONE, "Done: the asset exists"),
            (Status.DECLINED, "Declined"),
        ],
        label="Set to",
    )
    fulfilled_by = forms.ModelChoiceField(
        queryset=ContentAsset.objects.order_by("title"),
        required=False,
        empty_label="Choose the asset…",
        label="Asset that answers it",
    )
    close_note = forms.CharField(
        required=False, label="Note", help_text="Why it is declined (sales reads it)."
    )

    def clean(self):
        data = super().clean()
        status = data.get("status")
        if status == Status.DONE and not data.get("fulfilled_by"):
            self.add_error("fulfilled_by", "Pick the asset that answers the request.")
        if status == Status.DECLINED and not (data.get("close_note") or "").strip():
            self.add_error("close_note", "Say why it is declined: sales reads it.")
        return data


class ContentRequestFilterForm(forms.Form):
    STATUSES = [
        ("open", "Open and in progress"),
        (Status.DONE, "Done"),
        (Status.DECLINED, "Declined"),
        ("all", "All"),
    ]
    status = forms.ChoiceField(choices=STATUSES, required=False)

    def status_or_default(self) -> str:
        """The status filter; "open" when missing or not one of the choices."""
        if self.is_valid() and self.cleaned_data["status"]:
            return self.cleaned_data["status"]
        return "open"
