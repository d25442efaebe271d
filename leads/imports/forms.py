"""Forms of the import pages: they check the input and build a mapping; services do the rest."""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.conf import settings

from leads.imports.mapping import (
    BOOLEAN,
    CHOICE,
    COUNTRY,
    KIND_LABELS,
    KINDS,
    FieldSpec,
    ImportOptions,
    Mapping,
    MappingError,
    TargetField,
)
from leads.imports.presets import PRESETS
from leads.models import SavedMapping

NOT_IMPORTED, CONSTANT, COLUMNS = "", "constant", "columns"
UPLOAD_SUFFIXES = (".csv", ".txt", ".tsv")
VALUE_TABLE_TYPES = (CHOICE, BOOLEAN, COUNTRY)  # and any field whose mapping has a table
TIME_ZONES = ("UTC", "America/New_York", "America/Chicago", "America/Denver",
              "America/Los_Angeles", "America/Sao_Paulo", "Europe/London", "Europe/Berlin",
              "Europe/Paris", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo",
              "Australia/Sydney")  # fmt: skip


def _mapping_choices(kind: str | None = None) -> list[tuple[str, str]]:
    choices = [("", "Guess from the file's header")]
    for preset in PRESETS.values():
        if kind is None or preset.kind == kind:
            choices.append((f"preset:{preset.name}", f"Preset: {preset.label}"))
    saved = SavedMapping.objects.all() if kind is None else SavedMapping.objects.filter(kind=kind)
    for mapping in saved.order_by("kind", "name"):
        choices.append((f"saved:{mapping.pk}", f"Saved: {mapping}"))
    return choices


def _check_upload(upload, suffixes=UPLOAD_SUFFIXES) -> None:
    if Path(upload.name).suffix.lower() not in suffixes:
        raise forms.ValidationError(f"Upload a {' / '.join(suffixes)} file.")
    if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
        raise forms.ValidationError(
            f"The file is {upload.size:,} bytes; at most {settings.IMPORT_MAX_UPLOAD_BYTES:,}."
        )


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(kind, KIND_LABELS[kind]) for kind in KINDS], initial="leads", label="Import"
    )
    file = forms.FileField(label="CSV file", help_text="Comma, semicolon or tab separated.")
    mapping = forms.ChoiceField(required=False, label="Column mapping")
    mapping_file = forms.FileField(
        required=False, label="…or a mapping file", help_text="A mapping JSON downloaded before."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mapping"].choices = _mapping_choices()

    def clean_file(self):
        upload = self.cleaned_data["file"]
        _check_upload(upload)
        return upload

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        chosen, upload = cleaned.get("mapping"), cleaned.get("mapping_file")
        try:
            cleaned["chosen_mapping"] = chosen_mapping(kind, chosen, upload)
        except MappingError as problem:
            raise forms.ValidationError(problem.problems) from problem
        return cleaned


def chosen_mapping(kind: str, chosen: str | None, upload=None) -> Mapping | None:
    """The mapping picked in a form: an uploaded JSON file, a preset or a saved mapping."""
    if upload is not None:
        return Mapping.from_json(upload.read().decode("utf-8-sig", errors="replace"), kind=kind)
    if not chosen:
        return None
    source, _, key = chosen.partition(":")
    if source == "preset" and key in PRESETS:
        preset = PRESETS[key]
        if preset.kind != kind:
            raise MappingError([f"The preset “{preset.label}” is for {preset.kind}, not {kind}."])
        return preset.to_mapping()
    if source == "saved":
        saved = SavedMapping.objects.filter(pk=key if key.isdigit() else 0).first()
        if saved is not None:
            return Mapping.from_json(saved.mapping, kind=kind)
    raise MappingError(["Choose a mapping from the list."])


class ReplaceMappingForm(forms.Form):
    mapping = forms.ChoiceField(required=False, label="Use a mapping")
    mapping_file = forms.FileField(required=False, label="…or upload a mapping file")

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["mapping"].choices = _mapping_choices(kind)

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["chosen_mapping"] = chosen_mapping(
                self.kind, cleaned.get("mapping"), cleaned.get("mapping_file")
            )
        except MappingError as problem:
            raise forms.ValidationError(problem.problems) from problem
        if cleaned["chosen_mapping"] is None:
            cleaned["chosen_mapping"] = "guess"
        return cleaned


class SaveMappingForm(forms.Form):
    # Not required in HTML: it shares the page's form with "Import", which must not need it.
    name = forms.CharField(max_length=100, label="Save this mapping as", required=False)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the mapping a name to save it.")
        return name


def _parse_values(text: str, field_name: str) -> dict[str, str]:
    table = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "=" not in line:
            raise forms.ValidationError(
                f"{field_name}, line {number}: write “text in the file = value”."
            )
        raw, _, value = line.rpartition("=")
        table[raw.strip()] = value.strip()
    return table


class MappingForm(forms.Form):
    """One row per target field: where its value comes from (a column, a constant, nothing),
    with its date format and its table of values; then the import's options."""

    time_zone = forms.ChoiceField(
        choices=[(zone, zone) for zone in TIME_ZONES],
        help_text="For dates with a time of day the file gives without an offset.",
    )
    date_time_zone = forms.ChoiceField(
        choices=[("", "The display time zone (as the dashboards count days)")]
        + [(zone, zone) for zone in TIME_ZONES],
        required=False,
        label="Dates without a time are days in",
        help_text="A date alone (2017-04-01) is read as the start of that day there.",
    )
    update_existing = forms.BooleanField(
        required=False, label="Update records that exist (matched by e-mail or external id)"
    )
    create_owners = forms.BooleanField(
        required=False, label="Create unknown owners as inactive users"
    )
    owners_become_reps = forms.BooleanField(
        required=False,
        label="Make the owners sales reps (on no team), so they can be filtered and put on teams",
    )
    create_accounts = forms.BooleanField(required=False, label="Create unknown accounts")
    create_sources = forms.BooleanField(required=False, label="Create unknown sources")
    create_campaigns = forms.BooleanField(required=False, label="Create unknown campaigns")
    skip_invalid = forms.BooleanField(
        required=False,
        label="Skip invalid rows",
        help_text="Import the valid rows and report every skipped one (else all or nothing).",
    )

    def __init__(self, *args, targets: list[TargetField], header: list[str], mapping: Mapping,
                 skip_invalid: bool = False, **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.targets, self.header, self.mapping = targets, header, mapping
        specs = mapping.specs
        options = mapping.options
        self.initial.update(
            time_zone=options.time_zone,
            date_time_zone=options.date_time_zone or "",
            update_existing=options.update_existing,
            create_owners=options.create_owners,
            owners_become_reps=options.owners_become_reps,
            create_accounts=options.creates_accounts(mapping.kind),
            create_sources=options.create_sources,
            create_campaigns=options.create_campaigns,
            skip_invalid=skip_invalid,
        )
        if options.time_zone not in TIME_ZONES:
            self.fields["time_zone"].choices += [(options.time_zone, options.time_zone)]
        if options.date_time_zone and options.date_time_zone not in TIME_ZONES:
            zone = options.date_time_zone
            self.fields["date_time_zone"].choices += [(zone, zone)]
        column_choices = [(f"column:{column}", column) for column in header]
        self.rows = []
        for target in targets:
            spec = specs.get(target.name)
            choices = [(NOT_IMPORTED, "— not imported —"), *column_choices,
                       (CONSTANT, "A constant value…")]  # fmt: skip
            initial = NOT_IMPORTED
            if spec is not None:
                if spec.column is not None:
                    initial = f"column:{spec.column}"
                    if initial not in dict(choices):
                        choices.append((initial, f"{spec.column} (not in this file)"))
                elif spec.constant is not None:
                    initial = CONSTANT
                elif spec.columns:
                    initial = COLUMNS
                    choices.append((COLUMNS, "Columns: " + " + ".join(spec.columns)))
            name = target.name
            self.fields[f"{name}__source"] = forms.ChoiceField(
                choices=choices, required=False, initial=initial, label=target.label
            )
            self.fields[f"{name}__constant"] = forms.CharField(
                required=False, initial=spec.constant if spec else "", label="Constant"
            )
            row = {"target": target, "source": f"{name}__source", "constant": f"{name}__constant"}
            # (template keys must not shadow dict methods: "values" would call dict.values)
            if target.is_date:
                self.fields[f"{name}__format"] = forms.CharField(
                    required=False,
                    initial=(spec.format if spec else "") or "",
                    label="Date format",
                    help_text="Empty: ISO 8601. Else e.g. %m/%d/%Y %H:%M.",
                )
                row["date_format"] = f"{name}__format"
            if target.type in VALUE_TABLE_TYPES or (spec is not None and spec.values):
                self.fields[f"{name}__values"] = forms.CharField(
                    required=False,
                    widget=forms.Textarea(attrs={"rows": 2}),
                    initial="\n".join(f"{k} = {v}" for k, v in spec.values) if spec else "",
                    label="Values",
                    help_text="One per line: text in the file = value",
                )
                row["value_table"] = f"{name}__values"
            self.rows.append(row)

    def bound_rows(self):
        for row in self.rows:
            yield {
                "target": row["target"],
                **{key: self[value] for key, value in row.items() if key != "target"},
            }

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        fields = []
        specs = self.mapping.specs
        for target in self.targets:
            name = target.name
            source = cleaned.get(f"{name}__source", NOT_IMPORTED)
            old = specs.get(name) or FieldSpec()
            values = _parse_values(cleaned.get(f"{name}__values", ""), target.label)
            fmt = (cleaned.get(f"{name}__format") or "").strip() or None
            if source == NOT_IMPORTED:
                continue
            if source == CONSTANT:
                spec = FieldSpec(constant=cleaned.get(f"{name}__constant", ""))
            elif source == COLUMNS:
                spec = FieldSpec(columns=old.columns, join=old.join)
            else:
                column = source.removeprefix("column:")
                same = old.column == column
                # Settings the form does not show are kept while the column stays the same.
                spec = FieldSpec(
                    column=column,
                    time_zone=old.time_zone if same else None,
                    default=old.default if same else None,
                    scale=old.scale if same else None,
                    decimal=old.decimal if same else ".",
                    separator=old.separator if same else None,
                )
            spec = FieldSpec(**{**spec.__dict__, "format": fmt, "values": tuple(values.items())})
            fields.append((name, spec))
        options = ImportOptions(
            time_zone=cleaned["time_zone"],
            date_time_zone=cleaned.get("date_time_zone") or None,
            date_time=self.mapping.options.date_time,
            update_existing=cleaned["update_existing"],
            create_owners=cleaned["create_owners"],
            owners_become_reps=cleaned["owners_become_reps"],
            create_accounts=cleaned["create_accounts"],
            create_sources=cleaned["create_sources"],
            create_campaigns=cleaned["create_campaigns"],
            source_channel_groups=self.mapping.options.source_channel_groups,
            default_channel_group=self.mapping.options.default_channel_group,
        )
        mapping = Mapping(
            kind=self.mapping.kind,
            fields=tuple(fields),
            options=options,
            name=self.mapping.name,
            encoding=self.mapping.encoding,
            delimiter=self.mapping.delimiter,
        )
        try:  # the JSON form is the contract: make sure what the form built reads back
            cleaned["built_mapping"] = Mapping.from_json(mapping.to_json(), kind=mapping.kind)
        except MappingError as problem:
            raise forms.ValidationError(problem.problems) from problem
        return cleaned
