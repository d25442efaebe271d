"""A small, hand-computed world for backtest tests (default v1 definitions, MQL at 65).

Every lead's account (the factory's) is a software company of 500 people in North America:
fit 10 + 10 + 5 = 25, tier B. All events happen early today, so nothing has decayed. The draft
scoring model doubles a demo request (30 → 60 points).

=====  ========================  =======  =====  ==================  ====================
lead   events today              current  draft  outcome             stage / handoff
=====  ========================  =======  =====  ==================  ====================
hot    demo request              55       85     won opportunity     lead (moves on score)
warm   trial + 2 form fills      69       69     lost opportunity    mql, accepted today
cold   page view                 26       26     rejected handoff    nurture
quiet  —                         25       25     unknown             lead
=====  ========================  =======  =====  ==================  ====================
"""

from datetime import timedelta

from django.utils import timezone

from leads.choices import DefinitionStatus
from leads.models import EngagementEvent
from leads.services import definition_create_draft
from scoring.models import ScoringModel
from scoring.services import rescore_all_now
from tests.factories import LeadFactory
from tests.metrics.factories import accepted, lost, rejected, won


def early_today():
    now = timezone.now()
    start = now.replace(hour=0, minute=0, second=1, microsecond=0)
    return start if start <= now else now


def build_world() -> dict:
    at = early_today()
    created = at - timedelta(days=30)
    hot = LeadFactory(first_name="Hot", created_at=created, stage="lead")
    warm = LeadFactory(first_name="Warm", created_at=created, stage="mql")
    cold = LeadFactory(first_name="Cold", created_at=created, stage="nurture")
    quiet = LeadFactory(first_name="Quiet", created_at=created, stage="lead")
    events = [
        (hot, "demo_request"),
        (warm, "trial_signup"),
        (warm, "form_fill"),
        (warm, "form_fill"),
        (cold, "page_view"),
    ]
    EngagementEvent.objects.bulk_create(
        EngagementEvent(lead=lead, kind=kind, occurred_at=at) for lead, kind in events
    )
    closed = at
    won(lead=hot, closed_at=closed, created_at=created)
    lost(lead=warm, closed_at=closed, created_at=created)
    # Accepted: a handoff still pending would leave the outcome open (scoring.outcomes).
    accepted(lead=warm, at=at, assigned_at=at)
    rejected(lead=cold, at=at + timedelta(seconds=1), assigned_at=at)
    rescore_all_now(note="backtest world")
    return {"hot": hot, "warm": warm, "cold": cold, "quiet": quiet}


def draft_model_doubling_demo_requests(actor=None) -> ScoringModel:
    current = ScoringModel.objects.get(status=DefinitionStatus.PUBLISHED)
    draft = definition_create_draft(model=ScoringModel, actor=actor, copy_from=current)
    draft.weights.filter(kind="demo_request").update(points=60)
    return draft
