from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Lead scoring"

    def ready(self) -> None:
        from leads.models import IcpVersion
        from leads.panels import register_lead_panel
        from leads.services import (
            on_definition_published,
            on_lead_facts_changed,
            on_score_all_requested,
        )
        from scoring import services
        from scoring.models import ScoringModel
        from scoring.predictive.selectors import lead_prediction_context
        from scoring.selectors import explain_lead_score

        rescoring = ("Every lead is being rescored", "scoring:latest-job")
        on_definition_published(IcpVersion, services.definition_published, follow_up=rescoring)
        on_definition_published(ScoringModel, services.definition_published, follow_up=rescoring)
        on_lead_facts_changed(services.events_recorded)
        on_score_all_requested(lambda *, note: services.rescore_all_now(note=note).total_leads)
        register_lead_panel("explanation", explain_lead_score)
        # "Re-qualifies when …" for a lead held back by a rejection (None otherwise).
        register_lead_panel("requalification", services.lead_requalification)
        register_lead_panel("predicted", lambda lead: lead_prediction_context(lead.pk))
        connection_created.connect(_register_sqlite_functions)


def _register_sqlite_functions(sender, connection, **kwargs) -> None:
    """SQLite's lower() only folds ASCII; the bulk fit compares text with Python's str.lower."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "PY_LOWER",
            1,
            lambda value: value.lower() if isinstance(value, str) else value,
            deterministic=True,
        )
