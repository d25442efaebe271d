"""Daily rollups of the pipeline's facts: counts per local day and per dimension (source,
campaign, ICP tier, owner), so a dashboard for any filter set sums a few thousand narrow rows
instead of joining a million leads (``metrics.rollups`` keeps them; ``metrics.queries`` reads
them).

Database triggers (PostgreSQL) write the hour of every changed fact into ``RollupDirty`` in the
same transaction as the change, whatever wrote it: the ORM, a bulk UPDATE, COPY, an import or a
delete. The refresh recomputes exactly those days; until it has, reads take those days from
the raw facts. Medians and percentiles are not sums: a rollup row keeps the values themselves
(``RollupValues``), and a read takes the percentile over those of its days and the raw rows of
the rest, in one query, so it stays exact.

The dimension columns are foreign keys without database constraints: a rollup row only names
what it counts, and the filters (``metrics.queries.common``) reach a source's channel group or
an owner's team through them exactly as they do from a lead.
"""

import json

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

# Aggregates (PostgreSQL) that concatenate the arrays of the rows they group: any values
# (migration 0015), and sorted due times, sorted again once merged (``DueTimes``, 0019).
VALUES_AGGREGATE = "metrics_rollup_values_cat"
DUE_AGGREGATE = "metrics_rollup_due_merge"


class RollupValues(ArrayField):
    """The values a percentile is taken over (e.g. every response time of the day's group), as
    a PostgreSQL ``float8[]``. Rollups are PostgreSQL only; on SQLite the column exists (as text)
    but is never written."""

    def __init__(self, **options):
        options.setdefault("base_field", models.FloatField())
        options.setdefault("default", list)
        options.setdefault("blank", True)
        super().__init__(**options)

    def db_type(self, connection):
        return super().db_type(connection) if connection.vendor == "postgresql" else "text"

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor != "postgresql":  # the column's default, when SQLite adds it
            return None if value is None else json.dumps(value)
        return super().get_db_prep_value(value, connection, prepared)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("base_field", None)
        return name, path, args, kwargs


class DueTimes(RollupValues):
    """Due times (epoch seconds) of what is not done yet, kept sorted (the refresh aggregates
    them in order and a coarser grain merges them with ``metrics_rollup_due_merge``), so a read
    counts those not before ``now`` with one binary search (``metrics_rollup_due_not_before``,
    migration 0019) instead of unnesting a day's tens of thousands of them on every read."""


def _dimension(model: str, **options) -> models.ForeignKey:
    return models.ForeignKey(
        model,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        **options,
    )


class RollupFact(models.TextChoices):
    HANDOFF = "handoff", "Handoffs"
    COHORT = "cohort", "Lead cohorts"
    OPPORTUNITY = "opportunity", "Opportunities"
    STAGE_EXIT = "stage_exit", "Stage exits"
    OPEN_DEALS = "open_deals", "Open deals by objection"


class RollupState(models.Model):
    """How one rollup was built: in which time zone its days are, with which funnel stages
    (the cohort's "furthest stage"), and when. A rollup that was never built, or was built under
    other rules than a read asks for, is not read: the raw facts answer instead."""

    fact = models.CharField(max_length=16, choices=RollupFact.choices, primary_key=True)
    built = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=64, blank=True)
    funnel_keys = models.JSONField(default=list, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.get_fact_display()} rollup ({'built' if self.built else 'not built'})"


class RollupDirty(models.Model):
    """An hour (UTC, truncated) in which a fact of ``fact`` changed and whose local days the
    rollup must recompute. Written by triggers; read and deleted by the refresh in one
    statement, so a refresh that fails leaves them for the next one."""

    id = models.BigAutoField(primary_key=True)
    fact = models.CharField(max_length=16, choices=RollupFact.choices)
    hour = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["fact", "hour"], name="rollup_dirty_fact_hour")]

    def __str__(self) -> str:
        return f"{self.fact} changed in the hour of {self.hour:%Y-%m-%d %H:00} UTC"


class LeadRollupRow(models.Model):
    """What a rollup row of the lead grain is keyed by: the local day and the lead's source,
    campaign and tier. Reads with no owner or team filter and no owner grouping sum these rows:
    one per combination of the lead's dimensions instead of one per owner as well."""

    day = models.DateField()
    source = _dimension("leads.Source")
    campaign = _dimension("leads.Campaign")
    tier = models.CharField(max_length=1)

    class Meta:
        abstract = True


class OwnerRollupRow(models.Model):
    """What a rollup row of the owner grain is keyed by: the local day, the owner and the
    lead's ICP tier. Reads filtering or grouping by owner or team, and by nothing of the lead
    but its tier, sum these rows: at most one per owner and tier a day, however many sources
    and campaigns that owner's rows span (a tier-filtered page broken down by rep read the full
    grain, ~136k rows for four weeks at 1M after the handoff bench)."""

    day = models.DateField()
    owner = _dimension(settings.AUTH_USER_MODEL)
    tier = models.CharField(max_length=1)

    class Meta:
        abstract = True


class RollupRow(LeadRollupRow):
    """What every daily rollup row of the full grain is keyed by: the lead grain's keys and
    the owner (the handoff's assignee, the lead's or the deal's owner). Reads of this grain
    filter by source or channel (both as source ids) and group or filter by owner: each full
    grain has a ``(source, day)`` index, so a source's rows are read without the other
    sources' (a channel's rows were ~15 % of the day range's 127k rows at 1M)."""

    owner = _dimension(settings.AUTH_USER_MODEL)

    class Meta:
        abstract = True


class HandoffMeasures(models.Model):
    """Handoff counts for one local day and one group. Each group of measures is dated by its
    own instant: the acceptance counts by the assignment, each SLA clock by its due time, the
    feedback counts by the rejection (the same instants the raw KPIs filter on)."""

    # dated by assigned_at
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)  # with a timed response
    unanswered = models.PositiveIntegerField(default=0)  # no response yet
    response_seconds = RollupValues()  # the answered ones' response times, business seconds
    requalified = models.PositiveIntegerField(default=0)  # re-qualifying an earlier rejection
    # dated by response_due_at
    response_met = models.PositiveIntegerField(default=0)
    response_late = models.PositiveIntegerField(default=0)
    response_unanswered = models.PositiveIntegerField(default=0)
    # their due times (epoch seconds): missed once past, open until then
    response_unanswered_due = DueTimes()
    # dated by accept_due_at
    accept_met = models.PositiveIntegerField(default=0)
    accept_late = models.PositiveIntegerField(default=0)
    accept_undecided = models.PositiveIntegerField(default=0)
    accept_undecided_due = DueTimes()  # their due times (epoch seconds)
    # dated by rejected_at (rejected handoffs only)
    feedback_rejected = models.PositiveIntegerField(default=0)
    feedback_complete = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class HandoffDay(RollupRow, HandoffMeasures):
    """Handoff counts per local day, the lead's source, campaign and tier, and the handoff's
    assignee."""

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="handoff_day_day"),
            models.Index(fields=["source", "day"], name="handoff_day_source_day"),
        ]

    def __str__(self) -> str:
        return f"Handoffs on {self.day}"


class HandoffLeadDay(LeadRollupRow, HandoffMeasures):
    """``HandoffDay`` summed over the assignees (derived from it by the refresh)."""

    class Meta:
        indexes = [models.Index(fields=["day"], name="handoff_lead_day_day")]

    def __str__(self) -> str:
        return f"Handoffs on {self.day}, all owners"


class HandoffOwnerDay(OwnerRollupRow, HandoffMeasures):
    """``HandoffDay`` summed over the lead's source and campaign, per owner and tier (derived
    from it by the refresh)."""

    class Meta:
        indexes = [models.Index(fields=["day"], name="handoff_owner_day_day")]

    def __str__(self) -> str:
        return f"Handoffs on {self.day}, per owner"


class CohortMeasures(models.Model):
    """Leads created on one local day in one group, by the furthest funnel stage they reached
    (under the rules in ``RollupState.funnel_keys``: the funnel's stages and its opportunity
    stage)."""

    furthest_stage = models.CharField(max_length=30)
    leads = models.PositiveIntegerField(default=0)
    # of those that reached the opportunity stage: creation → first entry there, in seconds
    opportunity_seconds = RollupValues()
    # of those whose first won deal closed by the refresh: creation → that close, in seconds
    # and in local calendar days (``metrics.queries.funnel.lead_cohort``)
    won = models.PositiveIntegerField(default=0)
    won_seconds = RollupValues()
    won_calendar_days = RollupValues()

    class Meta:
        abstract = True


class CohortDay(RollupRow, CohortMeasures):
    """Lead cohorts per local day of creation, source, campaign, tier and the lead's owner."""

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="cohort_day_day"),
            models.Index(fields=["source", "day"], name="cohort_day_source_day"),
        ]

    def __str__(self) -> str:
        return f"Leads created on {self.day}"


class CohortLeadDay(LeadRollupRow, CohortMeasures):
    """``CohortDay`` summed over the owners (derived from it by the refresh)."""

    class Meta:
        indexes = [models.Index(fields=["day"], name="cohort_lead_day_day")]

    def __str__(self) -> str:
        return f"Leads created on {self.day}, all owners"


class CohortOwnerDay(OwnerRollupRow, CohortMeasures):
    """``CohortDay`` summed over the lead's source and campaign, per owner and tier (derived
    from it by the refresh)."""

    class Meta:
        indexes = [models.Index(fields=["day"], name="cohort_owner_day_day")]

    def __str__(self) -> str:
        return f"Leads created on {self.day}, per owner"


class OpportunityMeasures(models.Model):
    """Opportunity counts and amounts for one local day and one group (a deal without a lead
    has no source, campaign or tier): created that day, closed that day (won or lost), and won
    that day. The pipeline open at an instant is what was created before it less what was
    closed before it."""

    # dated by created_at
    created = models.PositiveIntegerField(default=0)
    created_amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    # dated by closed_at
    closed = models.PositiveIntegerField(default=0)
    closed_amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    won = models.PositiveIntegerField(default=0)
    won_amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    lost = models.PositiveIntegerField(default=0)
    # the cycles of the deals closed that day, won or lost, in seconds (see OpportunityResults)
    lead_cycle_seconds = RollupValues()  # won, with a lead: the lead's creation to the close
    opportunity_cycle_seconds = RollupValues()  # the deal's creation to its close
    won_opportunity_cycle_seconds = RollupValues()  # the same, won deals only

    class Meta:
        abstract = True


class OpportunityDay(OpportunityMeasures, RollupRow):
    """Opportunities per local day, the lead's source, campaign and tier, and the deal's
    owner."""

    tier = models.CharField(max_length=1, null=True)  # a deal may have no lead

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="opportunity_day_day"),
            models.Index(fields=["source", "day"], name="opportunity_day_source_day"),
        ]

    def __str__(self) -> str:
        return f"Opportunities on {self.day}"


class OpportunityLeadDay(OpportunityMeasures, LeadRollupRow):
    """``OpportunityDay`` summed over the owners (derived from it by the refresh)."""

    tier = models.CharField(max_length=1, null=True)  # a deal may have no lead

    class Meta:
        indexes = [models.Index(fields=["day"], name="opportunity_lead_day_day")]

    def __str__(self) -> str:
        return f"Opportunities on {self.day}, all owners"


class OpportunityOwnerDay(OpportunityMeasures, OwnerRollupRow):
    """``OpportunityDay`` summed over the lead's source and campaign, per owner and tier
    (derived from it by the refresh)."""

    tier = models.CharField(max_length=1, null=True)  # a deal may have no lead

    class Meta:
        indexes = [models.Index(fields=["day"], name="opportunity_owner_day_day")]

    def __str__(self) -> str:
        return f"Opportunities on {self.day}, per owner"


class StageExitMeasures(models.Model):
    """Transitions on one local day that left ``from_stage`` after an entry into it on record
    (``metrics.queries.funnel.stage_exits``), and how long each stayed, in seconds."""

    from_stage = models.CharField(max_length=30)
    exits = models.PositiveIntegerField(default=0)
    stay_seconds = RollupValues()

    class Meta:
        abstract = True


class StageExitDay(RollupRow, StageExitMeasures):
    """Stage exits per local day, the lead's source, campaign, tier and owner, and the stage
    left."""

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="stage_exit_day_day"),
            models.Index(fields=["source", "day"], name="stage_exit_day_source_day"),
        ]

    def __str__(self) -> str:
        return f"Stage exits on {self.day}"


class StageExitLeadDay(LeadRollupRow, StageExitMeasures):
    """``StageExitDay`` summed over the owners (derived from it by the refresh)."""

    class Meta:
        indexes = [models.Index(fields=["day"], name="stage_exit_lead_day_day")]

    def __str__(self) -> str:
        return f"Stage exits on {self.day}, all owners"


class StageExitOwnerDay(OwnerRollupRow, StageExitMeasures):
    """``StageExitDay`` summed over the lead's source and campaign, per owner and tier (derived
    from it by the refresh)."""

    class Meta:
        indexes = [models.Index(fields=["day"], name="stage_exit_owner_day_day")]

    def __str__(self) -> str:
        return f"Stage exits on {self.day}, per owner"


# Each rollup of the full grain and its coarser grains, derived from it by the refresh: a read
# sums the rows of the coarsest grain that holds the dimensions it filters or groups by
# (``metrics.queries.rolled``).
LEAD_GRAINS = {
    HandoffDay: HandoffLeadDay,
    CohortDay: CohortLeadDay,
    OpportunityDay: OpportunityLeadDay,
    StageExitDay: StageExitLeadDay,
}
OWNER_GRAINS = {
    HandoffDay: HandoffOwnerDay,
    CohortDay: CohortOwnerDay,
    OpportunityDay: OpportunityOwnerDay,
    StageExitDay: StageExitOwnerDay,
}


class OpenDealRow(models.Model):
    """A deal sales is working on, kept for the meeting's content slide (``metrics.open_deals``):
    an open opportunity of a lead, or a handoff of it still pending or accepted without an
    opportunity yet, whatever the lead's stage (the slide keeps the accepted ones whose lead is
    in a stage open at the time it reads). One row per deal (``objection`` None) and one per
    objection its lead heard, so the slide counts its groups from these narrow rows instead of
    joining every handoff to its lead and to the objections on each first view.

    Triggers (migration 0022) mark the leads whose deals, objections, stage, account or
    account's industry changed (``OpenDealDirty``) in the writer's transaction; the rollup
    refresh recomputes those leads' rows, and until it has, a read computes them from the raw
    facts. ``since`` is the latest
    instant a row depends on: a read for an earlier instant reads the raw facts instead.
    PostgreSQL only."""

    id = models.BigAutoField(primary_key=True)
    lead = _dimension("leads.Lead", db_index=False)
    kind = models.CharField(max_length=12)  # "opportunity" or "handoff"
    deal_id = models.BigIntegerField()
    stage = models.CharField(max_length=30)  # the opportunity's or the handoff's
    outcome = models.CharField(max_length=12, blank=True)  # a handoff's
    lead_stage = models.CharField(max_length=30, blank=True)
    objection = _dimension("leads.ObjectionTag", db_index=False)
    heard_any = models.BooleanField()  # on the deal's own row: its lead heard an objection
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    # The opportunity's account's industry, else its lead's account's; a handoff's lead's.
    industry = models.CharField(max_length=80, blank=True)
    since = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["lead"], name="open_deal_row_lead"),
            models.Index(fields=["since"], name="open_deal_row_since"),
            # The open opportunities' lead stages, read whole by the goals' forecasts
            # (``queries.open_amount_by_lead_stage``): an index-only scan of ~11,000 entries
            # at 1M leads instead of the table's ~170,000 rows.
            models.Index(
                fields=["deal_id"],
                include=["lead", "lead_stage"],
                condition=models.Q(kind="opportunity", objection__isnull=True),
                name="open_deal_row_opportunity",
            ),
        ]

    def __str__(self) -> str:
        return f"Open {self.kind} #{self.deal_id} of lead #{self.lead_id}"


class OpenDealGroup(models.Model):
    """``OpenDealRow`` counted per stage, outcome, lead stage, objection (0: the deal's own row)
    and industry: the content slide sums these few thousand rows instead of grouping the ~100k
    deal rows on every first view. The refresh keeps them with the rows (what it takes away
    from a lead's rows it takes from here, what it adds it adds), under the rollups' lock."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=12)
    stage = models.CharField(max_length=30)
    outcome = models.CharField(max_length=12, blank=True)
    lead_stage = models.CharField(max_length=30, blank=True)
    objection_key = models.BigIntegerField()  # the objection's id, 0 for the deal's own row
    heard_any = models.BooleanField()
    industry = models.CharField(max_length=80, blank=True)
    deals = models.IntegerField()
    amount = models.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "kind",
                    "stage",
                    "outcome",
                    "lead_stage",
                    "objection_key",
                    "heard_any",
                    "industry",
                ],
                name="open_deal_group_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.deals} open {self.kind}s at {self.stage}"


class OpenDealDirty(models.Model):
    """A lead whose open-deal rows are out of date: written by triggers, taken (deleted) by the
    refresh in its transaction, so a refresh that fails leaves them for the next one."""

    id = models.BigAutoField(primary_key=True)
    lead_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"Open deals of lead #{self.lead_id} to recompute"
