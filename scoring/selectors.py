"""Reads for scoring: definitions turned into engine specs, lead facts, explanations."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import BooleanField, Case, Exists, OuterRef, Value, When
from django.utils import timezone

from leads.choices import HandoffOutcome, OpportunityStatus
from leads.models import Handoff, IcpVersion, Lead, Opportunity, StageTransition
from leads.selectors import icp_in_force, lifecycle_at, version_in_force
from scoring import engine
from scoring.models import ScoringModel
from scoring.outcomes import OutcomeFacts, StageGroups, stage_groups_of
from scoring.retention import folded_event_days


def scoring_model_in_force(*, at: datetime | None = None) -> ScoringModel | None:
    return version_in_force(ScoringModel, at=at)


def icp_spec(version: IcpVersion) -> engine.IcpSpec:
    return engine.IcpSpec(
        version=version.number,
        criteria=tuple(
            engine.Criterion(
                name=c.name,
                attribute=c.attribute,
                values=tuple(v.lower() for v in c.values),
                min_value=float(c.min_value) if c.min_value is not None else None,
                max_value=float(c.max_value) if c.max_value is not None else None,
                points=c.points,
                is_exclusion=c.is_exclusion,
            )
            for c in version.criteria.order_by("pk")
        ),
        tier_a_min_points=version.tier_a_min_points,
        tier_b_min_points=version.tier_b_min_points,
        tier_c_min_points=version.tier_c_min_points,
    )


def scoring_spec(model: ScoringModel) -> engine.ScoringSpec:
    return engine.ScoringSpec(
        version=model.number,
        half_life_days=float(model.half_life_days),
        rules={
            w.kind: engine.KindRule(weight=float(w.points), daily_cap=w.daily_cap)
            for w in model.weights.all()
        },
        floor=float(model.engagement_floor),
        cap=float(model.engagement_cap),
        personal_email_penalty=float(model.personal_email_penalty),
        competitor_domains=frozenset(model.competitor_domains),
        competitor_penalty=float(model.competitor_penalty),
        band_1=float(model.band_1_min),
        band_2=float(model.band_2_min),
        band_3=float(model.band_3_min),
    )


def account_facts(account) -> engine.AccountFacts | None:
    if account is None:
        return None
    return engine.AccountFacts(
        industry=account.industry or "",
        employees=account.employees,
        annual_revenue=float(account.annual_revenue)
        if account.annual_revenue is not None
        else None,
        region=account.region or "",
        technologies=frozenset(account.technologies or ()),
        signals=frozenset(account.signals or ()),
    )


def person_facts(*, seniority: str, title: str, country: str) -> engine.PersonFacts:
    return engine.PersonFacts(seniority=seniority or "", title=title or "", country=country or "")


def lead_facts(lead: Lead) -> engine.LeadFacts:
    account = lead.account
    country = (account.country if account is not None and account.country else lead.country) or ""
    return engine.LeadFacts(
        person=person_facts(seniority=lead.seniority, title=lead.title, country=country),
        account=account_facts(account),
        email=lead.email or "",
    )


def lead_event_days(lead_id: int) -> list[tuple[str, int]]:
    """(kind, UTC day number) of every event of a lead, for the engine: its raw events and
    those retention folded (``scoring.retention``)."""
    return [
        (kind, engine.day_number(occurred_at))
        for kind, occurred_at in Lead.objects.get(pk=lead_id)
        .events.order_by()
        .values_list("kind", "occurred_at")
    ] + folded_event_days(lead_id)


@dataclass(frozen=True)
class ScoreExplanation:
    """Why a lead has its score: shown on the lead's page."""

    result: engine.ScoreResult
    icp: IcpVersion
    model: ScoringModel
    mql_threshold: int | None


def explain_lead_score(lead: Lead, *, at: datetime | None = None) -> ScoreExplanation | None:
    """Recompute the lead's score with the engine, with its breakdown, as of its last scoring."""
    icp = icp_in_force(at=at)
    model = scoring_model_in_force(at=at)
    if icp is None or model is None:
        return None
    state = getattr(lead, "score_state", None)
    as_of_day = state.as_of_day if state is not None and state.as_of_day else None
    if as_of_day is None:
        as_of_day = engine.day_number(at or timezone.now())
    result = engine.score_lead(
        icp_spec(icp),
        scoring_spec(model),
        lead_facts(lead),
        lead_event_days(lead.pk),
        as_of_day=as_of_day,
    )
    return ScoreExplanation(
        result=result,
        icp=icp,
        model=model,
        mql_threshold=lifecycle_at(at).handoff_threshold,
    )


# --- Known outcomes (the rule: scoring.outcomes) ---------------------------------------------


def stage_groups() -> StageGroups:
    return stage_groups_of(lifecycle_at())


def outcome_annotations(groups: StageGroups) -> dict:
    """Per-lead ``OutcomeFacts`` fields as SQL (EXISTS subqueries), to annotate a lead query."""

    def opportunity(status):
        return Exists(Opportunity.objects.filter(lead_id=OuterRef("pk"), status=status))

    def handoff(outcome):
        return Exists(Handoff.objects.filter(lead_id=OuterRef("pk"), outcome=outcome))

    return {
        "won_opportunity": opportunity(OpportunityStatus.WON),
        "lost_opportunity": opportunity(OpportunityStatus.LOST),
        "open_opportunity": opportunity(OpportunityStatus.OPEN),
        "reached_won_stage": Exists(
            StageTransition.objects.filter(lead_id=OuterRef("pk"), to_stage__in=groups.won)
        ),
        "in_lost_or_disqualified_stage": Case(
            When(stage__in=groups.lost_or_disqualified, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        "rejected_at_handoff": handoff(HandoffOutcome.REJECTED),
        "pending_handoff": handoff(HandoffOutcome.PENDING),
    }


def outcome_facts_in_range(
    *, lo: int, hi: int, stages_by_lead: dict[int, str], groups: StageGroups
) -> dict[int, OutcomeFacts]:
    """``OutcomeFacts`` of the leads with ``lo <= id <= hi`` (given their current stages), read
    with three grouped queries over the id range instead of seven subqueries per lead: the
    same facts ``outcome_annotations`` gives, for the backtest's bulk walk."""
    found: dict[int, dict[str, bool]] = defaultdict(dict)
    statuses = {
        OpportunityStatus.WON: "won_opportunity",
        OpportunityStatus.LOST: "lost_opportunity",
        OpportunityStatus.OPEN: "open_opportunity",
    }
    for lead_id, status in (
        Opportunity.objects.filter(lead__gte=lo, lead__lte=hi)
        .values_list("lead_id", "status")
        .order_by()
        .distinct()
    ):
        found[lead_id][statuses[status]] = True
    outcomes = {
        HandoffOutcome.REJECTED: "rejected_at_handoff",
        HandoffOutcome.PENDING: "pending_handoff",
    }
    for lead_id, outcome in (
        Handoff.objects.filter(lead__gte=lo, lead__lte=hi, outcome__in=list(outcomes))
        .values_list("lead_id", "outcome")
        .order_by()
        .distinct()
    ):
        found[lead_id][outcomes[outcome]] = True
    for lead_id in (
        StageTransition.objects.filter(lead__gte=lo, lead__lte=hi, to_stage__in=groups.won)
        .values_list("lead_id", flat=True)
        .order_by()
        .distinct()
    ):
        found[lead_id]["reached_won_stage"] = True
    return {
        lead_id: OutcomeFacts(
            **found.get(lead_id, {}),
            in_lost_or_disqualified_stage=stage in groups.lost_or_disqualified,
        )
        for lead_id, stage in stages_by_lead.items()
    }
