"""Scoring workflows: mark leads for a rescore, rescore them, run a full rescore, and move
leads whose stored score says so.

Concurrency, in one place (ADR 8):

* Recording facts bumps ``pending_seq`` of the leads' score states in the same transaction;
  the lead is dirty while ``pending_seq > scored_seq``. Only a clean → dirty change stamps
  ``enqueued_at`` and enqueues the lead (a burst of 100 events ⇒ one rescore); the sweep
  re-sends dirty leads whose message is older than SCORING_REQUEUE_AFTER_SECONDS (lost), or was
  never sent.
* A full-rescore bucket holds an advisory lock on its range (``lock_bucket``); the mark-dirty
  upsert takes the shared form of the same lock for its leads' ranges before locking their rows
  in id order, so the two never deadlock however the bucket's plan orders its rows. An
  incremental batch claims rows with SKIP LOCKED (``_claim_dirty``): it never waits, and sends
  busy leads again. The rules in force are read after the locks, so a publish that commits
  meanwhile is never overwritten.
* A bucket's refit and rescore statements compute each row from that row alone (and the
  lead's facts), so a row an incremental rescore changes meanwhile is recomputed from its new
  version and needs no lock first; re-reading sums joins the table to an aggregate of itself,
  so that step locks the range's rows in id order first (``lock_state_rows``).
* A batch writes only rows that are stale (other ICP, model or day), so running a batch or a
  task twice changes nothing the second time; a rescore marks ``scored_seq`` only for the seq
  whose events it read.
* Stage moves are a query over stored state (``leads_due_to_move``), applied by the chunk, the
  incremental task and the sweep alike: nothing a worker decides is lost when it dies.
"""

import functools
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Case, Exists, F, Max, Min, OuterRef, Q, When
from django.db.models.functions import Now
from django.utils import timezone

from leads.choices import ActorType, EventKind, HandoffOutcome
from leads.lifecycle import Lifecycle, Rejection
from leads.models import EngagementEvent, Handoff, IcpVersion, Lead
from leads.selectors import icp_in_force, lifecycle_at
from leads.services import HandoffRequest, facts, handoffs_open, locked_leads_move
from scoring import bulk, engine
from scoring.models import LeadScoreState, RescoreChunk, RescoreJob, ScoringModel, sum_field_name
from scoring.selectors import (
    icp_spec,
    lead_event_days,
    lead_facts,
    scoring_model_in_force,
    scoring_spec,
)

logger = logging.getLogger(__name__)

BUCKET_SIZE = 10_000
# ~40 % of the 1M bench seed's due leads sit in its newest 100,000: smaller chunks
# spread them over both workers (a chunk is one pass of moves, MOVE_EVERY_BUCKETS).
CHUNK_SIZE = 50_000
# Buckets of a chunk whose stage moves are made in one pass: each pass reads the rules, the
# candidates' rejections, the SLA policy and the rotation afresh (a fixed ~70 ms under load),
# which once per bucket was 100 passes per million-lead publish.
MOVE_EVERY_BUCKETS = 5
ADVISORY_NAMESPACE = 7301  # "scoring" in pg_advisory_xact_lock(namespace, bucket)


def lock_bucket(lead_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_NAMESPACE, lead_id // BUCKET_SIZE]
            )


def lock_state_rows(lo: int, hi: int) -> None:
    """Lock a bucket's score rows in id order before rewriting them: event writes lock the same
    rows in id order (the mark-dirty upsert), so the two queue up instead of deadlocking, and the
    bucket's UPDATE statements then see every row's latest committed version."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT 1 FROM {LeadScoreState._meta.db_table} WHERE lead_id BETWEEN %s AND %s "
                "ORDER BY lead_id FOR UPDATE",
                [lo, hi],
            )


def today_day_number() -> int:
    return engine.day_number(timezone.now())


def compatible_sums_models(model: ScoringModel) -> list[int]:
    """Published models whose half-life and caps equal ``model``'s: their sums stay valid."""
    caps = dict(model.weights.values_list("kind", "daily_cap"))
    compatible = []
    for other in ScoringModel.objects.filter(
        status="published", half_life_days=model.half_life_days
    ).prefetch_related("weights"):
        other_caps = {w.kind: w.daily_cap for w in other.weights.all()}
        if all(other_caps.get(kind) == cap for kind, cap in caps.items()):
            compatible.append(other.pk)
    return compatible


# --- Incremental -------------------------------------------------------------------------


def leads_mark_dirty(*, lead_ids: list[int]) -> list[int]:
    """Record that these leads have new facts; returns the ones that just became dirty (the
    caller enqueues those). Must run inside the transaction that wrote the facts."""
    if not lead_ids:
        return []
    if connection.vendor == "postgresql":
        return _leads_mark_dirty_upsert(lead_ids)
    existing = set(
        LeadScoreState.objects.filter(lead_id__in=lead_ids).values_list("lead_id", flat=True)
    )
    missing = [LeadScoreState(lead_id=pk) for pk in lead_ids if pk not in existing]
    LeadScoreState.objects.bulk_create(missing, ignore_conflicts=True)
    # enqueued_at on the database's clock, as the sweep compares it (Now()), on every backend.
    LeadScoreState.objects.filter(lead_id__in=lead_ids).update(
        pending_seq=F("pending_seq") + 1,
        enqueued_at=Case(
            When(Q(pending_seq=F("scored_seq")) | Q(enqueued_at__isnull=True), then=Now()),
            default="enqueued_at",
        ),
    )
    # Read after the update: our row locks make this exact even while a rescore commits.
    return list(
        LeadScoreState.objects.filter(
            lead_id__in=lead_ids, pending_seq=F("scored_seq") + 1
        ).values_list("lead_id", flat=True)
    )


def leads_mark_dirty_sql() -> str:
    """``leads_mark_dirty`` as one PostgreSQL statement; parameter: an array of lead ids;
    returns (lead id, just became dirty) rows."""
    opts = LeadScoreState._meta
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    column = {
        name: quote(opts.get_field(name).column)
        for name in ("lead", "pending_seq", "scored_seq", "epoch_day", "as_of_day", "enqueued_at")
    }
    # Ids in order, so concurrent batches lock rows in the same order (no deadlock).
    return (
        f"INSERT INTO {table} ({column['lead']}, {column['pending_seq']}, "
        f"{column['scored_seq']}, {column['epoch_day']}, {column['as_of_day']}, "
        f"{column['enqueued_at']}) "
        "SELECT DISTINCT id, 1, 0, 0, 0, now() FROM unnest(%s::bigint[]) AS ids(id) ORDER BY id "
        f"ON CONFLICT ({column['lead']}) DO UPDATE SET {column['pending_seq']} = "
        f"{table}.{column['pending_seq']} + 1, {column['enqueued_at']} = CASE WHEN "
        f"{table}.{column['pending_seq']} = {table}.{column['scored_seq']} THEN now() "
        f"ELSE {table}.{column['enqueued_at']} END "
        f"RETURNING {column['lead']}, {column['pending_seq']} = {column['scored_seq']} + 1"
    )


def lock_buckets_shared_sql() -> str:
    """One statement taking, in bucket order, the shared form of the advisory lock each
    full-rescore bucket holds exclusively (``lock_bucket``); parameter: an array of lead ids."""
    return (
        "SELECT pg_advisory_xact_lock_shared(%s, bucket) FROM (SELECT DISTINCT "
        "CAST(id / %s AS INTEGER) AS bucket FROM unnest(%s::bigint[]) AS ids(id) "
        "ORDER BY bucket) AS buckets"
    )


def _leads_mark_dirty_upsert(lead_ids: list[int]) -> list[int]:
    """The same on PostgreSQL in one statement per 10,000 leads: create the missing score
    states and bump the others, returning which just became dirty.

    First it waits for any full-rescore bucket of these leads to commit (and keeps buckets from
    starting on them until this transaction ends): a bucket updates its rows in whatever order
    its plan reads them, this upsert in id order, and without the bucket lock the two could
    each hold a row the other waits for."""
    became_dirty: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute(lock_buckets_shared_sql(), [ADVISORY_NAMESPACE, BUCKET_SIZE, lead_ids])
        for start in range(0, len(lead_ids), 10_000):
            cursor.execute(leads_mark_dirty_sql(), [list(lead_ids[start : start + 10_000])])
            became_dirty += [lead_id for lead_id, dirty in cursor.fetchall() if dirty]
    return became_dirty


def lead_rescore(*, lead_id: int, at: datetime | None = None) -> engine.ScoreResult | None:
    """Rescore one lead with the engine from all its events, then move it if its score says so.
    The reference path (and the lead page's explanation); workers rescore set-based."""
    with transaction.atomic():
        try:
            lead = Lead.objects.select_related("account").get(pk=lead_id)
        except Lead.DoesNotExist:
            return None
        LeadScoreState.objects.get_or_create(lead_id=lead_id)
        state = LeadScoreState.objects.select_for_update().get(lead_id=lead_id)
        # The rules in force are read under the row lock (see leads_rescore).
        at = at or timezone.now()
        model = scoring_model_in_force(at=at)
        icp_version = icp_in_force(at=at)
        if model is None or icp_version is None:
            return None
        spec, icp, facts = scoring_spec(model), icp_spec(icp_version), lead_facts(lead)
        result = engine.score_lead(
            icp, spec, facts, lead_event_days(lead_id), as_of_day=engine.day_number(at)
        )
        for kind in EventKind.values:
            setattr(state, sum_field_name(kind), result.sums.get(kind, 0.0))
        state.fit_points = result.fit.points
        state.fit_excluded = result.fit.excluded
        state.fit_conditions = engine.conditions_key(icp)
        state.fit_matches = (
            engine.criteria_matched(icp, facts) if state.fit_conditions is not None else None
        )
        state.tier = result.tier
        state.engagement = result.engagement
        state.total = result.total
        state.grade = result.grade
        state.epoch_day = result.epoch_day
        state.as_of_day = result.as_of_day
        state.icp_version = icp_version
        state.scoring_model = model
        state.sums_model = model
        state.scored_seq = state.pending_seq
        state.scored_at = at
        state.save()
        if lead.tier != result.tier:
            lead.tier = result.tier
            lead.save(update_fields=["tier", "updated_at"])
    threshold_moves_apply(lead_ids=[lead_id], at=at)
    return result


@dataclass(frozen=True)
class Claim:
    """The dirty leads a rescore holds (row-locked until it commits), and those of its own that
    another transaction held (a chunk, an event write): they are sent again shortly."""

    leads: list[int]
    busy: list[int]


def _claim_dirty(ids: list[int], *, fill_to: int) -> Claim:
    """Lock the still-dirty rows of ``ids`` and, up to ``fill_to`` leads, other dirty rows: one
    statement for many small messages' worth of work. SKIP LOCKED, so a rescore never waits for
    (nor deadlocks with) a full-rescore bucket, another rescore or an event write; every rescore
    statement after this sees the rows' latest committed versions, and nobody changes them until
    we commit."""
    dirty = LeadScoreState.objects.filter(pending_seq__gt=F("scored_seq"))
    locked = dirty.select_for_update(skip_locked=True).order_by("lead_id")
    claimed = list(locked.filter(lead_id__in=ids).values_list("lead_id", flat=True))
    busy = sorted(
        set(dirty.filter(lead_id__in=ids).values_list("lead_id", flat=True)) - set(claimed)
    )
    room = fill_to - len(claimed)
    if room > 0:
        claimed += locked.exclude(lead_id__in=ids + busy).values_list("lead_id", flat=True)[:room]
    return Claim(leads=sorted(claimed), busy=busy)


def leads_rescore(*, lead_ids: list[int], at: datetime | None = None, fill_to: int = 0) -> Claim:
    """The incremental path, set-based: rescore those of ``lead_ids`` that are still dirty (and,
    with ``fill_to``, other dirty leads up to that many) in a few SQL statements for the whole
    batch — the bulk SQL a full rescore runs, held to the engine by a property test. Returns the
    claim: the leads rescored (the caller applies stage moves) and the busy ones to send again.
    """
    ids = sorted(set(lead_ids))
    if not ids and fill_to <= 0:
        return Claim([], [])
    with transaction.atomic():
        claim = _claim_dirty(ids, fill_to=fill_to)
        if not claim.leads:
            return claim
        # The versions in force are read under the row locks: a publish whose full rescore
        # passed these rows meanwhile is seen, never overwritten with the old rules (one that
        # commits after this read finds our rows stale and redoes them).
        at = at or timezone.now()
        model = scoring_model_in_force(at=at)
        icp_version = icp_in_force(at=at)
        if model is None or icp_version is None:
            return Claim([], claim.busy)
        bulk.rescore_exactly(
            claim.leads,
            icp=icp_spec(icp_version),
            icp_version_id=icp_version.pk,
            spec=scoring_spec(model),
            model_id=model.pk,
            as_of_day=engine.day_number(at),
        )
        # The rows are locked: events recorded meanwhile wait to bump pending_seq, so the seq
        # marked as scored is exactly the one whose events were read.
        LeadScoreState.objects.filter(lead_id__in=claim.leads).update(
            scored_seq=F("pending_seq"), scored_at=at
        )
    return claim


def rescores_unsent(*, lead_ids: list[int]) -> None:
    """Their rescore could not be sent (broker down): due for the sweep's next run."""
    try:
        LeadScoreState.objects.filter(lead_id__in=lead_ids).update(enqueued_at=None)
    except DatabaseError:
        # Only a shortcut: without it the sweep still re-sends them a period later.
        logger.warning("Could not mark %s unsent rescores", len(lead_ids), exc_info=True)


def dirty_leads_to_requeue(*, older_than_seconds: int, limit: int) -> list[int]:
    """Dirty leads whose rescore was sent longer ago than ``older_than_seconds`` (its message was
    lost: a broker outage, a purged queue): stamped as sent again now, so a lead waiting in a
    long queue is re-sent at most once per period instead of every sweep."""
    cutoff = Now() - timezone.timedelta(seconds=older_than_seconds)
    ids = list(
        LeadScoreState.objects.filter(pending_seq__gt=F("scored_seq"))
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff))
        .order_by("lead_id")
        .values_list("lead_id", flat=True)[:limit]
    )
    if ids:
        LeadScoreState.objects.filter(lead_id__in=ids).update(enqueued_at=Now())
    return ids


# --- Threshold moves ---------------------------------------------------------------------
# Which leads must move is a query over stored scores, stages and handoffs, never a list a
# worker keeps in memory: a chunk applies it to its range after each bucket, the incremental
# path to the leads it rescored, and the sweep to everything, so after any crash the next sweep
# moves exactly the leads that should have moved, once.

MOVE_BATCH = 500
# Leads moved per transaction: their rows and the eligible reps stay locked for one statement
# set (~0.5 s for 500 at a million leads). Each transaction also reads the SLA policy, the
# calendar and the reps' rotation afresh (~0.1 s at a million leads), which at 100 a
# transaction was a third of a publish's moves.
MOVE_TRANSACTION = 500


@dataclass(frozen=True)
class MoveRules:
    """What deciding a stage move needs, read once per run instead of once per batch or lead:
    the lifecycle and scoring model in force, and the event kinds worth points under it
    (engagement that can re-qualify a rejected lead)."""

    lifecycle: Lifecycle
    model: ScoringModel
    qualifying_kinds: tuple[str, ...]


def move_rules(at: datetime) -> MoveRules | None:
    lifecycle = lifecycle_at(at)
    model = scoring_model_in_force(at=at)
    if model is None or lifecycle.min_score_threshold is None:
        return None
    kinds = tuple(model.weights.filter(points__gt=0).values_list("kind", flat=True))
    return MoveRules(lifecycle, model, kinds)


def latest_rejections(lead_ids: list[int]) -> dict[int, Rejection]:
    """Each lead's latest rejection at a handoff (the one that decides re-qualification)."""
    rejected = Handoff.objects.filter(
        lead_id__in=lead_ids, outcome=HandoffOutcome.REJECTED, rejected_at__isnull=False
    )
    latest = {}
    for lead_id, stage, rejected_at in rejected.order_by("lead_id", "-rejected_at").values_list(
        "lead_id", "stage", "rejected_at"
    ):
        latest.setdefault(lead_id, Rejection(stage_key=stage, rejected_at=rejected_at))
    return latest


def last_qualifying_engagement(
    rejections: dict[int, Rejection], *, lifecycle: Lifecycle, kinds: list[str]
) -> dict[int, object]:
    """For rejected leads: their latest qualifying event at or after the moment engagement
    counts again (rejection + cool-down), one grouped query."""
    if not rejections or not kinds:
        return {}
    since = Q()
    for lead_id, rejection in rejections.items():
        since |= Q(lead_id=lead_id, occurred_at__gte=lifecycle.requalify_counts_from(rejection))
    return dict(
        EngagementEvent.objects.filter(since, kind__in=kinds)
        .values("lead_id")
        .annotate(last=Max("occurred_at"))
        .values_list("lead_id", "last")
    )


PARALLEL_SETTING = "max_parallel_workers_per_gather"


@contextmanager
def serial_reads():
    """Plan the enclosed reads without parallel workers, then give the session its setting back.
    A bucket's move candidates are ~10,000 score rows read by index: on the state table, which
    every publish rewrites, PostgreSQL plans that read parallel, and starting a worker (10–45 ms
    on a busy two-core server) costs more than the whole read, once per bucket of a publish."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(%s), set_config(%s, '0', false)",
            [PARALLEL_SETTING, PARALLEL_SETTING],
        )
        [(previous, _)] = cursor.fetchall()
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, %s, false)", [PARALLEL_SETTING, previous])
        except DatabaseError:
            # The enclosing transaction failed: its rollback undoes the change anyway.
            pass


def leads_due_to_move(
    *,
    at: datetime | None = None,
    lead_ids: list[int] | None = None,
    lo: int | None = None,
    hi: int | None = None,
    after: int = 0,
    batch: int = MOVE_BATCH,
    rules: MoveRules | None = None,
) -> tuple[list[tuple[int, str]], int | None]:
    """One batch (by lead id, from ``after``) of leads whose stored score should move them now:
    total ≥ a score stage's threshold, in a stage a score may move, not a poor fit, no pending
    handoff, and not held back by a rejection (``Lifecycle.requalification``). Returns
    ``[(lead id, target stage key)]`` and the id to continue after (None when done)."""
    rules = rules or move_rules(at or timezone.now())
    if rules is None:
        return [], None
    lifecycle = rules.lifecycle
    rows = LeadScoreState.objects.filter(
        fit_excluded=False,
        total__gte=lifecycle.min_score_threshold,
        lead__stage__in=lifecycle.score_movable_keys,
        lead_id__gt=after,
    )
    if lead_ids is not None:
        rows = rows.filter(lead_id__in=lead_ids)
    if lo is not None and hi is not None:
        rows = rows.filter(lead_id__gte=lo, lead_id__lte=hi)
    pending = Handoff.objects.filter(lead_id=OuterRef("lead_id"), outcome=HandoffOutcome.PENDING)
    with serial_reads():
        candidates = list(
            rows.exclude(Exists(pending))
            .order_by("lead_id")
            .values_list("lead_id", "lead__stage", "total")[:batch]
        )
    if not candidates:
        return [], None
    rejections = latest_rejections([lead_id for lead_id, _, _ in candidates])
    engaged = last_qualifying_engagement(
        rejections, lifecycle=lifecycle, kinds=rules.qualifying_kinds
    )
    due = []
    for lead_id, stage, total in candidates:
        rule = lifecycle.requalification(rejections.get(lead_id), engaged.get(lead_id))
        if rule.blocked:
            continue
        target = lifecycle.score_target(stage, total, excluded=False)
        if target is not None:
            due.append((lead_id, target.key))
    more = candidates[-1][0] if len(candidates) == batch else None
    return due, more


def _leads_move_on_score(*, lead_ids: list[int], rules: MoveRules, at: datetime) -> int:
    """Move these due leads in one short transaction, each checked again under its row lock (a
    concurrent move, handoff or rescore may have changed it since the batch was read): a stage
    transition by "scoring" per lead and, for stages that hand leads to sales, their handoffs,
    opened together (one round robin over the batch). Returns how many moved."""
    lifecycle, model = rules.lifecycle, rules.model
    with transaction.atomic():
        leads = list(
            Lead.objects.select_related("account", "score_state")
            .select_for_update(of=("self",))
            .filter(pk__in=lead_ids)
            .order_by("pk")
        )
        pending = set(
            Handoff.objects.filter(
                lead_id__in=[lead.pk for lead in leads], outcome=HandoffOutcome.PENDING
            ).values_list("lead_id", flat=True)
        )
        targets = {}
        for lead in leads:
            state = getattr(lead, "score_state", None)
            if state is None or lead.pk in pending:
                continue
            target = lifecycle.score_target(lead.stage, state.total, excluded=state.fit_excluded)
            if target is not None:
                targets[lead.pk] = target
        rejections = latest_rejections(list(targets))
        engaged = last_qualifying_engagement(
            rejections, lifecycle=lifecycle, kinds=rules.qualifying_kinds
        )
        moving = []
        for lead in leads:
            target = targets.get(lead.pk)
            if target is None:
                continue
            rejection = rejections.get(lead.pk)
            if (
                rejection is not None
                and lifecycle.requalification(rejection, engaged.get(lead.pk)).blocked
            ):
                continue
            moving.append((lead, target, rejection is not None))
        if not moving:
            return 0
        moves = []
        for lead, target, requalified in moving:
            reason = (
                f"score {lead.score_state.total:g} ≥ {target.trigger_score} "
                f"under scoring model v{model.number}"
            )
            if requalified:
                reason += " (re-qualified by engagement after a rejection)"
            moves.append(
                facts.StageMove(
                    lead_id=lead.pk,
                    to_stage=target.key,
                    at=at,
                    actor_type=ActorType.SCORING,
                    reason=reason,
                )
            )
        locked_leads_move(
            leads=[lead for lead, _target, _requalified in moving],
            moves=moves,
            lifecycle=lifecycle,
        )
        handoffs_open(
            [
                HandoffRequest(lead=lead, stage_key=target.key, at=at)
                for lead, target, _requalified in moving
                if target.opens_handoff
            ]
        )
    return len(moving)


def _retrying_deadlocks(work, attempts: int = 3):
    """Run ``work`` (one short transaction) again when PostgreSQL broke a deadlock by aborting
    it: concurrent moves, rescores and event triggers lock leads, reps and handoffs."""
    for attempt in range(attempts):
        try:
            return work()
        except OperationalError as error:
            if "deadlock" not in str(error).lower() or attempt == attempts - 1:
                raise
            logger.info("Deadlock on a stage move; retrying (%s)", attempt + 1)
    return None


def threshold_moves_apply(
    *,
    lead_ids: list[int] | None = None,
    lo: int | None = None,
    hi: int | None = None,
    at: datetime | None = None,
    max_moves: int | None = None,
) -> int:
    """Move every lead (of ``lead_ids``, of ``lo``–``hi``, or all) whose stored score should move
    it, in batches read ``MOVE_BATCH`` at a time and moved ``MOVE_TRANSACTION`` at a time, each
    in a short transaction of its own. Idempotent: a moved lead is no longer due. Returns how
    many moved."""
    at = at or timezone.now()
    rules = move_rules(at)
    if rules is None:
        return 0
    moved, after = 0, 0
    while after is not None:
        due, after = leads_due_to_move(lead_ids=lead_ids, lo=lo, hi=hi, after=after, rules=rules)
        ids = [lead_id for lead_id, _target in due]
        if max_moves is not None:
            ids = ids[: max_moves - moved]
        for start in range(0, len(ids), MOVE_TRANSACTION):
            batch = ids[start : start + MOVE_TRANSACTION]
            moved += _retrying_deadlocks(
                lambda batch=batch: _leads_move_on_score(lead_ids=batch, rules=rules, at=at)
            )
        if max_moves is not None and moved >= max_moves:
            return moved
    return moved


def lead_requalification(lead: Lead, *, at: datetime | None = None):
    """For the lead page: whether a rejection holds the lead back, and in words when it will
    re-qualify (``Lifecycle.requalification``)."""
    at = at or timezone.now()
    rejection = latest_rejections([lead.pk]).get(lead.pk)
    if rejection is None:
        return None
    rules = move_rules(at)
    if rules is None:
        return None
    engaged = last_qualifying_engagement(
        {lead.pk: rejection}, lifecycle=rules.lifecycle, kinds=rules.qualifying_kinds
    )
    return rules.lifecycle.requalification(rejection, engaged.get(lead.pk))


# --- Full recompute ----------------------------------------------------------------------


def rescore_job_create(*, reason: str, note: str = "") -> RescoreJob:
    """Split all current leads into chunks to rescore; the caller enqueues them on commit."""
    bounds = Lead.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
    job = RescoreJob.objects.create(reason=reason, note=note, total_leads=Lead.objects.count())
    if bounds["lo"] is None:
        job.status = RescoreJob.Status.DONE
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        return job
    first = bounds["lo"] - bounds["lo"] % BUCKET_SIZE
    RescoreChunk.objects.bulk_create(
        RescoreChunk(
            job=job,
            first_lead_id=start,
            last_lead_id=min(start + CHUNK_SIZE - 1, bounds["hi"]),
            next_lead_id=start,
        )
        for start in range(first, bounds["hi"] + 1, CHUNK_SIZE)
    )
    return job


def rescore_chunk_run(*, chunk_id: int, on_progress=None, apply_moves: bool = True) -> int:
    """Bring a chunk's leads up to date, bucket by bucket from its watermark, and after every
    few buckets (``MOVE_EVERY_BUCKETS``) move the leads of those buckets whose new score says so;
    the chunk (and the job, with its last chunk) is finished after its last bucket's moves, so
    a job done means every lead it rescored has moved as its score says. Returns the moves
    made."""
    moved = 0
    # Published versions never change, so what is derived from them is built once per run; the
    # versions in force are still read every batch, so a publish mid-chunk takes effect.
    derived: dict[tuple[int, int], tuple] = {}
    # Buckets committed since the last pass of moves: from ``unmoved_from`` to the last one.
    unmoved_from, unmoved_to, unmoved_buckets, at = None, None, 0, None
    while True:
        with transaction.atomic():
            # This chunk's row only: the model's ordering ("job", …) joins the job, and a plain
            # FOR UPDATE then locked the job row too, queueing every bucket of one worker
            # behind the other's (~10 s of a million-lead publish on two workers).
            chunk = (
                RescoreChunk.objects.select_for_update(of=("self",))
                .filter(pk=chunk_id)
                .order_by()
                .first()
            )
            if chunk is None or chunk.finished_at is not None:
                break
            if chunk.next_lead_id > chunk.last_lead_id:
                # Every bucket done, and the last one's moves made (after a crash between the
                # two, by the sweep).
                chunk.finished_at = timezone.now()
                chunk.save(update_fields=["finished_at", "updated_at"])
                _finish_job_if_complete(chunk.job_id)
                break
            lo = chunk.next_lead_id
            hi = min(lo - lo % BUCKET_SIZE + BUCKET_SIZE - 1, chunk.last_lead_id)
            lock_bucket(lo)
            # Read after the lock: the rules in force now. A publish that commits later has a
            # job of its own, whose bucket waits for this one and finds these rows stale.
            at = timezone.now()
            icp_version = icp_in_force(at=at)
            model = scoring_model_in_force(at=at)
            if icp_version is None or model is None:
                break
            key = (icp_version.pk, model.pk)
            if key not in derived:
                derived[key] = (
                    icp_spec(icp_version),
                    scoring_spec(model),
                    compatible_sums_models(model),
                )
            icp, spec, keep_sums_of = derived[key]
            leads = bulk.bring_up_to_date(
                lo,
                hi,
                icp=icp,
                icp_version_id=icp_version.pk,
                spec=spec,
                model_id=model.pk,
                keep_sums_of=keep_sums_of,
                as_of_day=engine.day_number(at),
                lock_rows=functools.partial(lock_state_rows, lo, hi),
            )
            chunk.processed += leads
            chunk.next_lead_id = hi + 1
            chunk.save(update_fields=["processed", "next_lead_id", "updated_at"])
        # After the buckets' commits: a crash before their moves leaves them to the sweep, which
        # derives them from the stored scores just written. The chunk's last bucket is always
        # moved here, before the next round finishes the chunk.
        unmoved_from = lo if unmoved_from is None else unmoved_from
        unmoved_to = hi
        unmoved_buckets += 1
        if apply_moves and (unmoved_buckets >= MOVE_EVERY_BUCKETS or hi >= chunk.last_lead_id):
            moved += threshold_moves_apply(lo=unmoved_from, hi=hi, at=at)
            unmoved_from, unmoved_buckets = None, 0
        if on_progress is not None:
            on_progress(chunk)
    if apply_moves and unmoved_from is not None:
        # Stopped early (no rules in force): the buckets done still move as their scores say.
        moved += threshold_moves_apply(lo=unmoved_from, hi=unmoved_to, at=at)
    return moved


def _finish_job_if_complete(job_id: int) -> None:
    # Chunks finishing at once take turns on their job's row (held to the commit), so the last
    # of them reads every other one finished and finishes the job.
    list(RescoreJob.objects.select_for_update().filter(pk=job_id).values_list("pk"))
    if RescoreChunk.objects.filter(job_id=job_id, finished_at__isnull=True).exists():
        return
    finished = RescoreJob.objects.filter(pk=job_id, status=RescoreJob.Status.RUNNING).update(
        status=RescoreJob.Status.DONE, finished_at=timezone.now()
    )
    if finished:
        from scoring.tasks import enqueue_vacuum

        transaction.on_commit(enqueue_vacuum)


def score_states_vacuum() -> bool:
    """After a full rescore rewrote every score row: reclaim the old row versions so the next
    rescore updates rows in place (HOT) instead of growing the table and its indexes."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {LeadScoreState._meta.db_table}")
    return True


def job_progress(job: RescoreJob) -> dict:
    processed = sum(job.chunks.values_list("processed", flat=True))
    total = max(job.total_leads, 1)
    return {
        "job": job.pk,
        "status": job.status,
        "processed": processed,
        "total": job.total_leads,
        "percent": 100
        if job.status == RescoreJob.Status.DONE
        else min(99, processed * 100 // total),
    }


def stalled_chunk_ids(*, older_than_seconds: int) -> list[int]:
    """Unfinished chunks nobody advanced lately: their worker died or their message was lost."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return list(
        RescoreChunk.objects.filter(finished_at__isnull=True, updated_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )


# --- Publishing hooks ----------------------------------------------------------------------


def definition_published(*, version) -> None:
    """Registered with leads.services: a published ICP or scoring model rescores every lead.
    Runs inside the publishing transaction, so the job exists exactly if the publish does."""
    from scoring.tasks import enqueue_job

    reason = (
        RescoreJob.Reason.ICP_PUBLISHED
        if isinstance(version, IcpVersion)
        else RescoreJob.Reason.MODEL_PUBLISHED
    )
    job = rescore_job_create(reason=reason, note=str(version))
    transaction.on_commit(lambda: enqueue_job(job.pk))


def events_recorded(*, lead_ids: list[int]) -> None:
    """Registered with leads.services: new events mark their leads dirty; enqueue on commit."""
    from scoring.tasks import enqueue_rescores

    became_dirty = leads_mark_dirty(lead_ids=lead_ids)
    if became_dirty:
        transaction.on_commit(lambda: enqueue_rescores(became_dirty))


def decay_job_create_if_due() -> RescoreJob | None:
    """A decay rescore, unless every lead is already scored as of today or one is running."""
    today = today_day_number()
    if RescoreJob.objects.filter(status=RescoreJob.Status.RUNNING).exists():
        return None
    if not LeadScoreState.objects.filter(as_of_day__lt=today).exists():
        return None
    with transaction.atomic():
        return rescore_job_create(reason=RescoreJob.Reason.DECAY, note=f"day {today}")


def rescore_all_now(*, note: str = "") -> RescoreJob:
    """Score every lead in this process (no worker), without moving stages: for the demo seeder
    and management commands, where history is already written."""
    with transaction.atomic():
        job = rescore_job_create(reason=RescoreJob.Reason.MANUAL, note=note)
    for chunk_id in job.chunks.values_list("pk", flat=True):
        rescore_chunk_run(chunk_id=chunk_id, apply_moves=False)
    job.refresh_from_db()
    return job
