from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Lead scoring"

    def ready(self) -> None:
        from leads.models import IcpVersion
        from leads.services import on_definition_published, on_events_recorded
        from scoring import services
        from scoring.models import ScoringModel

        rescoring = ("Every lead is being rescored", "scoring:latest-job")
        on_definition_published(IcpVersion, services.definition_published, follow_up=rescoring)
        on_definition_published(ScoringModel, services.definition_published, follow_up=rescoring)
        on_events_recorded(services.events_recorded)
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
