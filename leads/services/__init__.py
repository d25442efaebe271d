"""Writes and workflows on definitions and facts. Each is atomic and validates first.

Split by subject; everything is importable from ``leads.services``.
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
from leads.services.pipeline import (
    engagement_events_record,
    handoff_open,
    lead_follow_opportunity,
    lead_move_to_stage,
    leads_apply_event_triggers,
    on_events_recorded,
    sales_rep_pick,
)

__all__ = [
    "BreachSweepResult",
    "definition_create_draft",
    "definition_publish",
    "definition_publish_follow_ups",
    "engagement_events_record",
    "handoff_accept",
    "handoff_breach_sweep",
    "handoff_log_touch",
    "handoff_open",
    "handoff_reassign",
    "handoff_reject",
    "lead_follow_opportunity",
    "lead_move_to_stage",
    "lead_recycle",
    "leads_apply_event_triggers",
    "next_number",
    "notifications_email_pending",
    "notifications_mark_read",
    "on_definition_published",
    "on_events_recorded",
    "sales_rep_pick",
    "user_can_act",
    "user_manages",
]
