"""The sales side of the demo: what reps logged on the handoffs the generator wrote.

Every answered handoff gets its first response (call, e-mail or meeting), some with objections
heard and marketing content shared, and its decision (accepted, or rejected with the reason and
note), so the handoff pages, the content dashboard and the meeting's objections have data. Its own
random stream, so the rest of the demo stays the same for a seed.
"""

import random

from leads.choices import ActivityAction, ActorType, HandoffOutcome, TouchChannel
from leads.models import ContentAsset, Handoff, LeadActivity, ObjectionTag

CHANNELS = (TouchChannel.CALL, TouchChannel.CALL, TouchChannel.EMAIL, TouchChannel.MEETING)
BATCH = 5_000


def demo_activities_create(*, seed: int) -> int:
    """Write the demo's sales activities; returns how many."""
    rng = random.Random(f"{seed}:activities")
    objections = list(ObjectionTag.objects.filter(is_active=True).order_by("order"))
    assets = list(ContentAsset.objects.exclude(funnel_stage="tofu").order_by("pk"))
    answered = (
        Handoff.objects.filter(first_response_at__isnull=False)
        .order_by("pk")
        .values_list(
            "pk",
            "lead_id",
            "assignee_id",
            "first_response_at",
            "outcome",
            "accepted_at",
            "rejected_at",
            "reject_note",
        )
    )
    written = 0
    batch: list[tuple[LeadActivity, list, list]] = []
    for (
        handoff_id,
        lead_id,
        rep,
        responded_at,
        outcome,
        accepted_at,
        rejected_at,
        note,
    ) in answered.iterator(chunk_size=BATCH):
        rejected = outcome == HandoffOutcome.REJECTED
        heard = (
            rng.sample(objections, k=rng.choice((1, 1, 2)))
            if objections and rng.random() < (0.45 if rejected else 0.2)
            else []
        )
        shared = (
            [rng.choice(assets)] if assets and rng.random() < (0.1 if rejected else 0.35) else []
        )
        batch.append(
            (
                LeadActivity(
                    lead_id=lead_id,
                    handoff_id=handoff_id,
                    action=ActivityAction.RESPONDED,
                    channel=rng.choice(CHANNELS),
                    occurred_at=responded_at,
                    actor_id=rep,
                    actor_type=ActorType.USER,
                ),
                heard,
                shared,
            )
        )
        decided_at = accepted_at or rejected_at
        if decided_at is not None:
            batch.append(
                (
                    LeadActivity(
                        lead_id=lead_id,
                        handoff_id=handoff_id,
                        action=ActivityAction.REJECTED if rejected else ActivityAction.ACCEPTED,
                        occurred_at=decided_at,
                        actor_id=rep,
                        actor_type=ActorType.USER,
                        note=note if rejected else "",
                    ),
                    [],
                    [],
                )
            )
        if len(batch) >= BATCH:
            written += _write(batch)
            batch = []
    if batch:
        written += _write(batch)
    return written


def _write(batch: list[tuple[LeadActivity, list, list]]) -> int:
    activities = LeadActivity.objects.bulk_create([activity for activity, _, _ in batch])
    objection_links = LeadActivity.objections.through
    asset_links = LeadActivity.content_assets.through
    objection_links.objects.bulk_create(
        objection_links(leadactivity_id=activity.pk, objectiontag_id=tag.pk)
        for activity, (_, heard, _) in zip(activities, batch, strict=True)
        for tag in heard
    )
    asset_links.objects.bulk_create(
        asset_links(leadactivity_id=activity.pk, contentasset_id=asset.pk)
        for activity, (_, _, shared) in zip(activities, batch, strict=True)
        for asset in shared
    )
    return len(activities)
