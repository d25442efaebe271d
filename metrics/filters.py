"""The dashboards' filters: a period preset (or custom dates) and the KPI filters, all in the URL
so a link shows the same view."""

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.models import Q, QuerySet
from django.utils import timezone

from leads.choices import ChannelGroup, FitTier
from leads.models import Campaign, Source
from metrics.kpis import NONE, KpiFilters, Period
from metrics.queries import GroupBy


class Preset:
    THIS_WEEK = "this_week"
    LAST_4_WEEKS = "last_4_weeks"
    THIS_QUARTER = "this_quarter"
    LAST_QUARTER = "last_quarter"
    LAST_12_MONTHS = "last_12_months"
    CUSTOM = "custom"
    CHOICES = [
        (THIS_WEEK, "This week"),
        (LAST_4_WEEKS, "Last 4 weeks"),
        (THIS_QUARTER, "This quarter"),
        (LAST_QUARTER, "Last quarter"),
        (LAST_12_MONTHS, "Last 12 months"),
        (CUSTOM, "Custom dates"),
    ]
    DEFAULT = LAST_4_WEEKS


def preset_days(preset: str, today: date) -> tuple[date, date]:
    """First and last day of a preset period ending today (weeks start on Monday)."""
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    if preset == Preset.THIS_WEEK:
        return today - timedelta(days=today.weekday()), today
    if preset == Preset.THIS_QUARTER:
        return quarter_start, today
    if preset == Preset.LAST_QUARTER:
        last_day = quarter_start - timedelta(days=1)
        return date(last_day.year, 3 * ((last_day.month - 1) // 3) + 1, 1), last_day
    if preset == Preset.LAST_12_MONTHS:
        return today - timedelta(days=364), today
    return today - timedelta(days=27), today


def owner_choices() -> QuerySet:
    """Who can be chosen as an owner: every user who is a sales rep or is responsible for a
    lead, an opportunity or a handoff, active or not. Imported owners are often inactive users
    without a rep record, and their rows must be reachable all the same."""
    from leads.models import Handoff, Lead, Opportunity

    responsible = {
        *_distinct_ids(Lead, "owner_id"),
        *_distinct_ids(Opportunity, "owner_id"),
        *_distinct_ids(Handoff, "assignee_id"),
    }
    return get_user_model().objects.filter(Q(sales_rep__isnull=False) | Q(pk__in=responsible))


def _distinct_ids(model, column: str) -> list[int]:
    """The distinct non-null values of an indexed foreign key column, by skipping through its
    index one value at a time (a "loose index scan"): a few dozen index probes for a few dozen
    owners, where ``EXISTS`` per user or ``DISTINCT`` read all million lead rows (2.5 s)."""
    connection = connections[router.db_for_read(model)]  # the replica in a stale-reads scope
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE found(value) AS (
                SELECT (SELECT {column} FROM {table} WHERE {column} IS NOT NULL
                        ORDER BY {column} LIMIT 1)
                UNION ALL
                SELECT (SELECT {column} FROM {table} WHERE {column} > found.value
                        ORDER BY {column} LIMIT 1)
                FROM found WHERE found.value IS NOT NULL
            )
            SELECT value FROM found WHERE value IS NOT NULL
            """
        )
        return [row[0] for row in cursor.fetchall()]


class ModelMultipleChoiceOrNoneField(forms.ModelMultipleChoiceField):
    """Ids of the queryset's rows, or ``none`` (``metrics.kpis.NONE``): the rows without one.
    Cleans to the chosen objects, with ``NONE`` appended when it was chosen."""

    def clean(self, value):
        values = [value] if isinstance(value, str) else list(value or [])
        wants_none = NONE in values
        chosen = [item for item in values if item != NONE]
        found = list(super().clean(chosen)) if chosen else []
        return [*found, NONE] if wants_none else found


class ModelChoiceOrNoneField(forms.ModelChoiceField):
    """One row of the queryset, or ``none`` (cleans to ``NONE``)."""

    def clean(self, value):
        return NONE if value == NONE else super().clean(value)


class DashboardFilterForm(forms.Form):
    preset = forms.ChoiceField(choices=Preset.CHOICES, required=False, label="Period")
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    source = ModelMultipleChoiceOrNoneField(queryset=Source.objects.all(), required=False)
    channel = forms.MultipleChoiceField(
        choices=ChannelGroup.choices, required=False, label="Channel group"
    )
    campaign = ModelMultipleChoiceOrNoneField(queryset=Campaign.objects.all(), required=False)
    tier = forms.MultipleChoiceField(
        choices=[*FitTier.choices, (NONE, "No tier (no lead)")], required=False, label="ICP tier"
    )
    owner = ModelMultipleChoiceOrNoneField(queryset=get_user_model().objects.none(), required=False)
    team = ModelChoiceOrNoneField(
        queryset=get_user_model().objects.filter(team_members__isnull=False).distinct(),
        required=False,
        label="Team of",
        empty_label="Any team",
    )
    group_by = forms.ChoiceField(
        choices=[("", "No breakdown"), *GroupBy.CHOICES], required=False, label="Breakdown"
    )

    MAX_DAYS = 3 * 366

    def __init__(self, data=None, *, today: date | None = None):
        super().__init__(data)
        # Today where the dashboards are read, whatever time zone is active (the API answers
        # in UTC; a worker has none): "this week" must not start at UTC midnight.
        self.today = today or timezone.localdate(timezone=ZoneInfo(settings.DISPLAY_TIME_ZONE))
        self.fields["owner"].queryset = owner_choices()
        self.fields["owner"].label_from_instance = _person
        self.fields["team"].label_from_instance = _person

    def clean(self):
        cleaned = super().clean()
        preset = cleaned.get("preset") or Preset.DEFAULT
        if preset == Preset.CUSTOM:
            start, end = cleaned.get("start"), cleaned.get("end")
            if not start or not end:
                raise forms.ValidationError("Custom dates need both a start and an end date.")
            if end < start:
                self.add_error("end", "The end date is before the start date.")
            elif (end - start).days > self.MAX_DAYS:
                self.add_error("end", "Choose a period of at most three years.")
        cleaned["preset"] = preset
        return cleaned

    def _valid_data(self) -> dict:
        """The fields that passed validation: a bad value drops its own filter, not the rest."""
        self.is_valid()
        return getattr(self, "cleaned_data", {})

    def period(self) -> Period:
        data = self._valid_data()
        preset = data.get("preset") or Preset.DEFAULT
        start, end = data.get("start"), data.get("end")
        if preset == Preset.CUSTOM and start and end and start <= end and "end" not in self.errors:
            first, last = start, end
        else:
            first, last = preset_days(
                Preset.DEFAULT if preset == Preset.CUSTOM else preset, self.today
            )
        return Period.from_dates(first, last, settings.DISPLAY_TIME_ZONE)

    def breakdown(self) -> str | None:
        """The dimension chosen to break the KPIs down by, if any."""
        return self._valid_data().get("group_by") or None

    def kpi_filters(self) -> KpiFilters:
        data = self._valid_data()
        team = data.get("team")
        chosen = {name: data.get(name) or [] for name in ("source", "campaign", "tier", "owner")}
        without = [name for name, values in chosen.items() if NONE in values]
        if team == NONE:
            without.append("team")
        return KpiFilters(
            source_ids=[source.pk for source in chosen["source"] if source != NONE],
            channel_groups=data.get("channel") or [],
            campaign_ids=[campaign.pk for campaign in chosen["campaign"] if campaign != NONE],
            tiers=[tier for tier in chosen["tier"] if tier != NONE],
            owner_ids=[user.pk for user in chosen["owner"] if user != NONE],
            team_manager_id=team.pk if team and team != NONE else None,
            without=without,
        )

    def options(self) -> dict[str, list[tuple[str, str, bool]]]:
        """(value, label, selected) per choice filter, "none" first where a row can lack the
        value. Rendered by ``option_tags``: Django's widgets render each option through a
        template, which for hundreds of reps cost more than the rest of the page."""
        raw = self.data if self.is_bound else {}
        chosen = {name: set(raw.getlist(name)) if raw else set() for name in self.fields}
        people = [
            (str(pk), f"{first} {last}".strip() or username)
            for pk, first, last, username in self.fields["owner"]
            .queryset.values_list("pk", "first_name", "last_name", "username")
            .order_by("first_name", "username")
        ]
        managers = [
            (str(pk), f"{first} {last}".strip() or username)
            for pk, first, last, username in self.fields["team"]
            .queryset.values_list("pk", "first_name", "last_name", "username")
            .order_by("first_name", "username")
        ]
        lists = {
            "source": [
                (NONE, NONE_LABELS["source"]),
                *((str(pk), name) for pk, name in Source.objects.values_list("pk", "name")),
            ],
            "campaign": [
                (NONE, NONE_LABELS["campaign"]),
                *((str(pk), name) for pk, name in Campaign.objects.values_list("pk", "name")),
            ],
            "owner": [(NONE, NONE_LABELS["owner"]), *people],
            "team": [(NONE, NONE_LABELS["team"]), *managers],
            "channel": [(value, label) for value, label in ChannelGroup.choices],
            "tier": [(value, label) for value, label in self.fields["tier"].choices],
            "group_by": list(self.fields["group_by"].choices),
        }
        return {
            name: [(value, label, value in chosen[name]) for value, label in values]
            for name, values in lists.items()
        }

    def totals_label(self) -> str:
        return totals_label(self._valid_data())

    def describe(self) -> str:
        """The filters in words, for headings and exported files."""
        return describe_filters(self._valid_data())


def describe_filters(data: dict) -> str:
    """The narrowing filters of cleaned form data in words ("Webinars, Ads · tier A"), "" when
    none is set (the period is said apart)."""
    parts = []
    for name in ("source", "campaign", "owner"):
        if data.get(name):
            parts.append(
                ", ".join(NONE_LABELS[name] if item == NONE else str(item) for item in data[name])
            )
    if data.get("channel"):
        labels = dict(ChannelGroup.choices)
        parts.append(", ".join(labels[value] for value in data["channel"]))
    if data.get("tier"):
        parts.append("tier " + "/".join("none" if tier == NONE else tier for tier in data["tier"]))
    if data.get("team") == NONE:
        parts.append(NONE_LABELS["team"].lower())
    elif data.get("team"):
        parts.append(f"team of {_person(data['team'])}")
    return " · ".join(parts)


def totals_label(data: dict) -> str:
    """What a totals row adds up, on the page and in its export: "All sources" only when
    nothing narrows the rows, else the filters it stands for ("Total (filtered: Webinars, Ads ·
    tier A)"), so a total copied out of context still says what it counts."""
    described = describe_filters(data)
    return f"Total (filtered: {described})" if described else "All sources"


NONE_LABELS = {
    "source": "No source",
    "campaign": "No campaign",
    "owner": "No owner",
    "team": "On no team",
}


def _person(user) -> str:
    return user.get_full_name() or user.get_username()
