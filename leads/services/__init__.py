"""Writes and workflows on definitions and facts. Each is atomic and validates first.

Split by subject; everything is importable from ``leads.services``. Facts are written by the
set-based layer (``leads.services.facts``); the per-row services in ``pipeline`` are thin calls
into it. Other apps hear of changes through the hooks in ``leads.services.hooks``.
"""

from leads.services.definitions import (
    definition_create_draft,
    definition_publish,
    definition_publish_follow_ups,
    next_number,
    on_definition_published,
)
from leads.services.handoffs import (
    BreachSweepResult,
    handoff_accept,
    handoff_breach_sweep,
    handoff_log_touch,
    handoff_reassign,
    handoff_reject,
    lead_recycle,
    notifications_email_pending,
    notifications_mark_read,
    user_can_act,
    user_manages,
)
from leads.services.hooks import (
    lead_facts_changed,
    leads_score_all_now,
    on_lead_facts_changed,
    on_score_all_requested,
)
from leads.services.pipeline import (
    HandoffRequest,
    account_create,
    account_update,
    engagement_event_update,
    engagement_events_ingest,
    engagement_events_record,
    handoff_open,
    handoffs_open,
    lead_create,
    lead_follow_opportunity,
    lead_move_to_stage,
    lead_update,
    leads_apply_event_triggers,
    locked_leads_move,
    opportunity_save,
    sales_rep_pick,
)

__all__ = [
    "BreachSweepResult",
    "HandoffRequest",
    "account_create",
    "account_update",
    "definition_create_draft",
    "definition_publish",
    "definition_publish_follow_ups",
    "engagement_event_update",
    "engagement_events_ingest",
    "engagement_events_record",
    "handoff_accept",
    "handoff_breach_sweep",
    "handoff_log_touch",
    "handoff_open",
    "handoff_reassign",
    "handoff_reject",
    "handoffs_open",
    "lead_create",
    "lead_facts_changed",
    "lead_follow_opportunity",
    "lead_move_to_stage",
    "lead_recycle",
    "lead_update",
    "leads_apply_event_triggers",
    "leads_score_all_now",
    "locked_leads_move",
    "next_number",
    "notifications_email_pending",
    "notifications_mark_read",
    "on_definition_published",
    "on_lead_facts_changed",
    "on_score_all_requested",
    "opportunity_save",
    "sales_rep_pick",
    "user_can_act",
    "user_manages",
]
