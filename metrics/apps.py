from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from leads.demo.hooks import on_demo_reset, on_demo_seeded
        from metrics import demo

        # seed_demo adds goals and past meetings; its reset removes the meetings first.
        on_demo_seeded(demo.demo_goals_and_meetings)
        on_demo_reset(demo.demo_meetings_reset)
