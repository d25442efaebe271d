"""Reads for backtests: the facts of a range of leads (in a few set-based queries), the drafts
one can simulate and the results to show. The MQL threshold and the stages a score may move a
lead out of are the lifecycle's answers (``leads.lifecycle``)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Min

from leads.models import FoldedEventDay, Handoff, Lead
from scoring import engine
from scoring.backtest.models import Backtest, BacktestLead
from scoring.bulk import utc_day_sql
from scoring.outcomes import closed_outcome
from scoring.selectors import lead_facts, outcome_facts_in_range, stage_groups


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """What the simulation needs of one lead."""

    lead_id: int
    facts: engine.LeadFacts
    created_day: int
    stage: str
    counts: dict[tuple[str, int], int]
    first_handoff_day: int | None
    outcome: str  # BacktestLead.Outcome value


# A known outcome (scoring.outcomes, the predictive score's rule too) as BacktestLead stores it.
OUTCOME_LABELS = {1: BacktestLead.Outcome.WON, 0: BacktestLead.Outcome.LOST, None: ""}


def lead_records(*, lo: int, hi: int, as_of: datetime) -> list[LeadRecord]:
    """The leads with ``lo <= id <= hi``: facts, events per (kind, day), first handoff day and
    outcome, in six queries whatever the range's size."""
    groups = stage_groups()
    leads = list(
        Lead.objects.filter(pk__range=(lo, hi))
        .select_related("account")
        .only(
            "pk",
            "email",
            "seniority",
            "title",
            "country",
            "created_at",
            "stage",
            "account__industry",
            "account__employees",
            "account__annual_revenue",
            "account__region",
            "account__technologies",
            "account__signals",
            "account__country",
        )
        .order_by("pk")
    )
    if not leads:
        return []
    counts = _event_counts(lo, hi, as_of)
    first_handoff = dict(
        Handoff.objects.filter(lead__gte=lo, lead__lte=hi)
        .values("lead_id")
        .annotate(first=Min("assigned_at"))
        .values_list("lead_id", "first")
    )
    facts = outcome_facts_in_range(
        lo=lo, hi=hi, stages_by_lead={lead.pk: lead.stage for lead in leads}, groups=groups
    )
    records = []
    for lead in leads:
        outcome = closed_outcome(facts[lead.pk])
        handed_off = first_handoff.get(lead.pk)
        records.append(
            LeadRecord(
                lead_id=lead.pk,
                facts=lead_facts(lead),
                created_day=engine.day_number(lead.created_at),
                stage=lead.stage,
                counts=counts.get(lead.pk, {}),
                first_handoff_day=engine.day_number(handed_off) if handed_off else None,
                outcome=OUTCOME_LABELS[outcome],
            )
        )
    return records


def _event_counts(lo: int, hi: int, as_of: datetime) -> dict[int, dict[tuple[str, int], int]]:
    """lead id → (kind, UTC day) → events, counted in SQL."""
    day = utc_day_sql("occurred_at")
    sql = f"""
        SELECT lead_id, kind, {day} AS day, COUNT(*)
        FROM leads_engagementevent
        WHERE lead_id BETWEEN %s AND %s AND occurred_at < %s
        GROUP BY lead_id, kind, {day}
    """
    counts: dict[int, dict[tuple[str, int], int]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(sql, [lo, hi, as_of])
        for lead_id, kind, event_day, n in cursor.fetchall():
            counts[lead_id][kind, int(event_day)] = n
    # Days retention folded (scoring.retention): whole UTC days before the one ``as_of`` falls
    # in (a backtest as of an instant inside a folded day misses that day's part before it).
    folded = FoldedEventDay.objects.filter(
        lead_id__gte=lo, lead_id__lte=hi, day__lt=engine.day_number(as_of)
    ).values_list("lead_id", "kind", "day", "events")
    for lead_id, kind, event_day, n in folded:
        counts[lead_id][kind, event_day] = counts[lead_id].get((kind, event_day), 0) + n
    return counts


# --- Pages -----------------------------------------------------------------------------------


def recent_backtests():
    """For the list page (the caller paginates)."""
    return Backtest.objects.select_related(
        "draft_icp", "draft_model", "created_by", "current_icp", "current_model"
    ).defer("current_spec", "draft_spec", "tallies", "summary")


def changed_leads(backtest: Backtest):
    """The drill-down: leads whose tier or MQL eligibility differs, by lead id."""
    return (
        BacktestLead.objects.filter(backtest=backtest, changed=True)
        .select_related("lead")
        .only(
            "lead_id",
            "current_total",
            "draft_total",
            "current_tier",
            "draft_tier",
            "current_eligible",
            "draft_eligible",
            "movable",
            "lead__first_name",
            "lead__last_name",
            "lead__email",
            "lead__stage",
        )
        .order_by("lead_id")
    )


def outcome_rows(backtest: Backtest) -> list[tuple[float, float, bool, bool, bool]]:
    """(current peak, draft peak, current reached, draft reached, won) of leads with a known
    outcome, for the outcome metrics."""
    return [
        (current_peak, draft_peak, current_reached, draft_reached, outcome == "won")
        for current_peak, draft_peak, current_reached, draft_reached, outcome in (
            BacktestLead.objects.filter(backtest=backtest)
            .exclude(outcome="")
            .order_by()
            .values_list(
                "current_peak", "draft_peak", "current_reached", "draft_reached", "outcome"
            )
            .iterator(chunk_size=10_000)
        )
    ]
