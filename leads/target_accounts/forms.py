"""Forms of the target-account pages: they parse what was typed; the services check the rules."""

from django import forms


class ImportForm(forms.Form):
    lines = forms.CharField(
        label="Accounts to add",
        widget=forms.Textarea(
            attrs={"rows": 6, "placeholder": 'acme.com, 1, Ana runs the play\n"Globex, Inc.", 2'}
        ),
        help_text="One a line: the account's domain or name, then optionally its tier (1, 2, 3) "
        "and a note, separated by commas. An account already on the draft takes the new tier "
        "and note. A line that names no account (or several) refuses the whole paste.",
    )


class NoteForm(forms.Form):
    note = forms.CharField(
        required=False,
        label="What changed and why",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown with the list to both teams.",
    )
