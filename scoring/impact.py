"""What publishing a draft ICP or scoring model would do, read before it is published.

The draft's totals are evaluated in one ``SELECT … GROUP BY`` over the score states with the
same SQL the rescore after a publish runs (``scoring.bulk``: the ICP compiled to SQL, the
engagement from the stored sums), so the preview and the publish cannot disagree on a score.
A lead counts as moved by the publish when its draft total moves it (``Lifecycle.score_target``
compiled to a CASE) while its stored score does not already, and nothing else holds it back (a
pending handoff, a poor fit, a rejection it has not re-qualified from). The handoffs those moves
open are spread over the reps by replaying the round robin (``scoring.impact_spread``).

Read-only: nothing is locked or written. Above ``SAMPLE_ABOVE`` leads the figures are
estimated from every n-th lead, and the page says so.
"""

import math
from collections import Counter
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, F, Max, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from leads.choices import HandoffOutcome
from leads.lifecycle import NURTURE, Lifecycle
from leads.models import Handoff, IcpVersion, SalesRep
from leads.playbook import fit_alone_reaches_handoff, threshold_note
from leads.selectors import icp_in_force, lifecycle_at
from scoring import bulk, engine
from scoring.impact_spread import RepSlot, Spread, spread_handoffs
from scoring.models import LeadScoreState, ScoringModel
from scoring.selectors import icp_spec, scoring_model_in_force, scoring_spec

# Up to this many leads every lead is read; above it, a deterministic sample of about
# SAMPLE_SIZE leads (``Sample``) keeps the preview within a few seconds at a million leads.
SAMPLE_ABOVE = 120_000
SAMPLE_SIZE = 60_000
SAMPLE_BLOCKS = 50
# Rejected leads checked for re-qualification (one grouped query over their events).
REJECTED_LIMIT = 2_000

HANDOFF_TABLE = Handoff._meta.db_table


@dataclass(frozen=True)
class StageMoves:
    key: str
    name: str
    leads: int
    opens_handoff: bool


@dataclass(frozen=True)
class TierChange:
    before: str
    after: str
    leads: int


@dataclass(frozen=True)
class PublishImpact:
    """The preview a publish confirmation shows."""

    leads_read: int  # leads whose draft score was computed (all, or the sample)
    sample_step: int  # 1 = every lead; n = about one lead in n, figures scaled by n
    moves: tuple[StageMoves, ...]
    handoffs: int
    spread: Spread | None
    tier_changes: tuple[TierChange, ...]
    held_back_by_rejection: int
    fit_alone_reaches: bool
    fit_alone_note: str
    caveats: tuple[str, ...]

    @property
    def moved(self) -> int:
        return sum(move.leads for move in self.moves)

    @property
    def estimated(self) -> bool:
        return self.sample_step > 1

    @property
    def leads_changing_tier(self) -> int:
        return sum(change.leads for change in self.tier_changes)


# --- Pure pieces -------------------------------------------------------------------------------


def zero_engagement(spec: engine.ScoringSpec) -> float:
    """The engagement of a lead with no events and a business e-mail under ``spec``: 0 under
    any model that can be saved (its floor is at most 0), kept so fit alone is judged as the
    engine would."""
    return engine.quantize(min(max(0.0, spec.floor), spec.cap))


def best_fit_points(icp: engine.IcpSpec) -> int:
    """The most fit points the ICP can award (every criterion that awards points matched)."""
    return sum(c.points for c in icp.criteria if c.points > 0 and not c.is_exclusion)


def fit_alone_total(icp: engine.IcpSpec, spec: engine.ScoringSpec) -> float:
    """The best total a lead reaches on fit alone, with zero engagement."""
    return engine.total_score(best_fit_points(icp), zero_engagement(spec))


def target_sql(lifecycle: Lifecycle, total: str, stage: str) -> tuple[str, list]:
    """``Lifecycle.score_target`` (without the exclusion, checked apart) as a CASE over a stage
    column and a total expression: the furthest score stage reached, or NULL."""
    whens, params = [], []
    for current in lifecycle.stages:
        if current.key not in lifecycle.score_movable_keys:
            continue
        reachable = [
            s
            for s in lifecycle.score_stages
            if (current.kind == NURTURE or s.order > current.order) and s.key != current.key
        ]
        # The furthest first: the first WHEN that holds is the one score_target picks.
        for target in sorted(reachable, key=lambda s: s.order, reverse=True):
            whens.append(f"WHEN {stage} = %s AND {total} >= %s THEN %s")
            params += [current.key, target.trigger_score, target.key]
    if not whens:
        return "CAST(NULL AS VARCHAR(50))", []
    return "CASE " + " ".join(whens) + " END", params


# --- The draft's scores in SQL -----------------------------------------------------------------


@dataclass(frozen=True)
class _Draft:
    icp: engine.IcpSpec
    icp_is_draft: bool
    spec: engine.ScoringSpec
    qualifying_kinds: tuple[str, ...]


def _scores_sql(draft: _Draft, lifecycle: Lifecycle, *, as_of_day: int, sample: "Sample"):
    """A query over score states giving, per lead: lead id, region, the draft tier and the old
    one, whether it has been rejected before, and the stage its draft score moves it to because
    of this publish (NULL: it does not move, or would move anyway)."""
    params: list = []
    engagement, engagement_params = bulk._engagement_sql(draft.spec, as_of_day)
    if draft.icp_is_draft:
        points, points_params, excluded, excluded_params = bulk._fit_sql(draft.icp)
        fit = f"{points} AS points, CASE WHEN {excluded} THEN 1 ELSE 0 END AS excluded"
        fit_params = [*points_params, *excluded_params]
    else:
        fit = "s.fit_points AS points, CASE WHEN s.fit_excluded THEN 1 ELSE 0 END AS excluded"
        fit_params = []
    sample_sql, sample_params = sample.sql("s.lead_id")
    lead_sample_sql, lead_sample_params = sample.sql("l.id")
    x = f"""
        SELECT s.lead_id, l.stage, {fit}, {engagement} AS engagement,
               s.total AS old_total, CASE WHEN s.fit_excluded THEN 1 ELSE 0 END AS old_excluded,
               s.tier AS old_tier, COALESCE(a.region, '') AS region,
               CASE WHEN p.lead_id IS NULL THEN 0 ELSE 1 END AS pending,
               CASE WHEN r.lead_id IS NULL THEN 0 ELSE 1 END AS rejected
        FROM {bulk.STATE_TABLE} s
        JOIN {bulk.LEAD_TABLE} l ON l.id = s.lead_id
        LEFT JOIN {bulk.ACCOUNT_TABLE} a ON a.id = l.account_id
        -- Joins rather than EXISTS per row: PostgreSQL then computes the scores in parallel.
        LEFT JOIN (SELECT DISTINCT lead_id FROM {HANDOFF_TABLE} WHERE outcome = %s) p
            ON p.lead_id = s.lead_id
        LEFT JOIN (SELECT DISTINCT lead_id FROM {HANDOFF_TABLE}
                   WHERE outcome = %s AND rejected_at IS NOT NULL) r
            ON r.lead_id = s.lead_id
        WHERE 1 = 1 {sample_sql} {lead_sample_sql}
    """
    params += [
        *fit_params,
        *engagement_params,
        HandoffOutcome.PENDING,
        HandoffOutcome.REJECTED,
        *sample_params,
        *lead_sample_params,
    ]
    if draft.icp_is_draft:
        tier = (
            "CASE WHEN x.excluded = 1 THEN 'D' WHEN x.points >= %s THEN 'A' "
            "WHEN x.points >= %s THEN 'B' WHEN x.points >= %s THEN 'C' ELSE 'D' END"
        )
        tier_params = [
            draft.icp.tier_a_min_points,
            draft.icp.tier_b_min_points,
            draft.icp.tier_c_min_points,
        ]
    else:
        tier, tier_params = "x.old_tier", []
    total = bulk._quantized(bulk._greatest("x.points + x.engagement", "0"))
    y = f"SELECT x.*, {total} AS total, {tier} AS tier FROM x"
    params += tier_params
    new_target, new_params = target_sql(lifecycle, "y.total", "y.stage")
    old_target, old_params = target_sql(lifecycle, "y.old_total", "y.stage")
    z = f"""
        SELECT y.lead_id, y.region, y.tier, y.old_tier, y.rejected,
               CASE WHEN y.excluded = 0 AND y.pending = 0
                     AND (y.old_excluded = 1 OR ({old_target}) IS NULL)
                    THEN {new_target} END AS moves_to
        FROM y
    """
    params += [*old_params, *new_params]
    return f"WITH x AS ({x}), y AS ({y}), z AS ({z})", params


# --- Reps --------------------------------------------------------------------------------------


def rep_line(*, on) -> list[RepSlot]:
    """The eligible reps in the rotation's order with their open handoffs, as
    ``RepRotation`` reads them, but without locking them."""
    from leads.services.pipeline import _eligible_reps  # the one definition of "eligible"

    open_count = (
        Handoff.objects.filter(assignee_id=OuterRef("user_id"), outcome=HandoffOutcome.PENDING)
        .order_by()
        .values("assignee_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    reps = (
        SalesRep.objects.filter(pk__in=_eligible_reps(on=on).values("pk"))
        .select_related("user")
        .annotate(open_handoffs=Coalesce(Subquery(open_count), 0))
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
    )
    return [
        RepSlot(
            rep_id=rep.pk,
            name=rep.user.get_full_name() or rep.user.get_username(),
            region=rep.region,
            tiers=tuple(rep.tiers or ()),
            capacity=rep.capacity,
            open_handoffs=rep.open_handoffs,
        )
        for rep in reps
    ]


# --- The selector ------------------------------------------------------------------------------


def _held_back(ids: list[int], *, lifecycle: Lifecycle, kinds: tuple[str, ...]) -> set[int]:
    """Of these previously rejected leads, those whose rejection still holds them back: the
    rule threshold moves apply (``Lifecycle.requalification``), read-only."""
    from scoring.services import last_qualifying_engagement, latest_rejections

    rejections = latest_rejections(ids)
    engaged = last_qualifying_engagement(rejections, lifecycle=lifecycle, kinds=list(kinds))
    return {
        lead_id
        for lead_id, rejection in rejections.items()
        if lifecycle.requalification(rejection, engaged.get(lead_id)).blocked
    }


@dataclass(frozen=True)
class Sample:
    """Which leads the preview reads: all (step 1), or about one in ``step`` as ``SAMPLE_BLOCKS``
    runs of consecutive ids spread evenly over the id range — index range scans that read only
    the sampled rows (every n-th id would still read every page), and leads of every age."""

    step: int = 1
    ranges: tuple[tuple[int, int], ...] = ()

    def sql(self, column: str) -> tuple[str, list]:
        if self.step == 1:
            return "", []
        ors = " OR ".join(f"{column} BETWEEN %s AND %s" for _ in self.ranges)
        return f"AND ({ors})", [bound for pair in self.ranges for bound in pair]


def sample_of(lo: int, hi: int) -> Sample:
    span = hi - lo + 1
    if span <= SAMPLE_ABOVE:
        return Sample()
    step = math.ceil(span / SAMPLE_SIZE)
    stride = math.ceil(span / SAMPLE_BLOCKS)
    run = max(stride // step, 1)
    return Sample(
        step=step,
        ranges=tuple((start, start + run - 1) for start in range(lo, hi + 1, stride)),
    )


def _sample() -> Sample:
    bounds = LeadScoreState.objects.aggregate(lo=Min("lead_id"), hi=Max("lead_id"))
    if bounds["lo"] is None:
        return Sample()
    return sample_of(bounds["lo"], bounds["hi"])


def _draft_of(version) -> tuple[_Draft, list[str]] | None:
    caveats: list[str] = []
    if isinstance(version, IcpVersion):
        model = scoring_model_in_force()
        if model is None:
            return None
        icp, spec, icp_is_draft = icp_spec(version), scoring_spec(model), True
    elif isinstance(version, ScoringModel):
        icp_version = icp_in_force()
        if icp_version is None:
            return None
        icp, spec, icp_is_draft = icp_spec(icp_version), scoring_spec(version), False
        model = version
        current = scoring_model_in_force()
        if current is not None and not _same_sums(current, version):
            caveats.append(
                "The draft changes the half-life or a daily cap: the publish re-reads every "
                "event, while this preview re-weights the sums kept under the model in force, "
                "so its figures are approximate."
            )
    else:
        return None
    kinds = tuple(sorted(model.weights.filter(points__gt=0).values_list("kind", flat=True)))
    return _Draft(icp=icp, icp_is_draft=icp_is_draft, spec=spec, qualifying_kinds=kinds), caveats


def _same_sums(a: ScoringModel, b: ScoringModel) -> bool:
    caps = {(w.kind, w.daily_cap) for w in a.weights.all()}
    return a.half_life_days == b.half_life_days and caps == {
        (w.kind, w.daily_cap) for w in b.weights.all()
    }


def publish_impact(version) -> PublishImpact | None:
    """What publishing the draft ICP or scoring model ``version`` now would do; None when it
    is neither or nothing is in force to compare with."""
    drafted = _draft_of(version)
    if drafted is None:
        return None
    draft, caveats = drafted
    now = timezone.now()
    lifecycle = lifecycle_at(now)
    best = fit_alone_total(draft.icp, draft.spec)
    sample = _sample()
    step = sample.step
    cte, params = _scores_sql(draft, lifecycle, as_of_day=engine.day_number(now), sample=sample)

    # One pass: every lead the publish moves is a row of its own (the round robin needs them in
    # id order), every other lead folds into a handful of (tier before, tier after) groups.
    grouped = f"""
        {cte}
        SELECT CASE WHEN z.moves_to IS NULL THEN NULL ELSE z.lead_id END, z.moves_to,
               z.rejected, z.old_tier, z.tier,
               CASE WHEN z.moves_to IS NULL THEN NULL ELSE z.region END, COUNT(*)
        FROM z GROUP BY 1, 2, 3, 4, 5, 6
    """
    with connection.cursor() as cursor:
        cursor.execute(grouped, params)
        groups = cursor.fetchall()

    leads_read = sum(row[-1] for row in groups)
    tiers = Counter()
    for _lead, _moves_to, _rejected, old_tier, tier, _region, n in groups:
        if old_tier != tier:
            tiers[(old_tier, tier)] += n
    movers = sorted(row for row in groups if row[0] is not None)

    # Rejected leads re-qualify only after new engagement: check them (up to a bound; the
    # share held back among those checked stands for the rest).
    rejected_ids = [row[0] for row in movers if row[2]]
    checked = rejected_ids[:REJECTED_LIMIT]
    held = (
        _held_back(checked, lifecycle=lifecycle, kinds=draft.qualifying_kinds) if checked else set()
    )
    if len(checked) < len(rejected_ids):
        caveats.append(
            f"{len(rejected_ids) * step} previously rejected leads would cross the threshold; "
            f"the share a rejection still holds back is estimated from {len(checked)} of them."
        )
        scale = len(rejected_ids) / len(checked)
    else:
        scale = 1.0
    moving = Counter(row[1] for row in movers if row[0] not in held)
    for key, n in Counter(row[1] for row in movers if row[0] in held).items():
        moving[key] -= round(n * (scale - 1))
    held_back = round(len(held) * scale)

    handoff_keys = set(lifecycle.handoff_keys)
    handoffs = sum(n for key, n in moving.items() if key in handoff_keys)
    spread = None
    if handoff_keys:
        # In lead-id order, as the rescore hands them over; each sampled lead stands for
        # ``step`` leads of the burst.
        handed = [
            (row[5], row[4])
            for row in movers
            if row[1] in handoff_keys and row[0] not in held
            for _ in range(step)
        ]
        spread = spread_handoffs(rep_line(on=now.date()), handed)

    moves = tuple(
        StageMoves(
            key=key,
            name=lifecycle.by_key[key].display_name if key in lifecycle.by_key else key,
            leads=n * step,
            opens_handoff=key in handoff_keys,
        )
        for key, n in sorted(moving.items(), key=lambda item: lifecycle.order_of(item[0]))
        if n > 0
    )
    return PublishImpact(
        leads_read=leads_read,
        sample_step=step,
        moves=moves,
        handoffs=handoffs * step,
        spread=spread,
        tier_changes=tuple(
            TierChange(before, after, n * step) for (before, after), n in sorted(tiers.items())
        ),
        held_back_by_rejection=held_back * step,
        fit_alone_reaches=fit_alone_reaches_handoff(lifecycle, best),
        fit_alone_note=threshold_note(lifecycle, best),
        caveats=tuple(caveats),
    )
