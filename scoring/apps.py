from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Lead scoring"

    def ready(self) -> None:
        from leads.models import IcpVersion
        from leads.services import on_definition_published, on_events_recorded
        from scoring import services
        from scoring.models import ScoringModel

        on_definition_published(IcpVersion, services.definition_published)
        on_definition_published(ScoringModel, services.definition_published)
        on_events_recorded(services.events_recorded)
