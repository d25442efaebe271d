from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from leads.demo.hooks import on_demo_reset, on_demo_seeded
        from leads.services.bulk import tables_loaded_bare
        from metrics import demo, rollups

        # seed_demo adds goals and past meetings; its reset removes the meetings first.
        on_demo_seeded(demo.demo_goals_and_meetings)
        on_demo_seeded(rollups.rollups_after_seed)
        # A bulk load with triggers off leaves the rollups to be rebuilt (the seed's hook does).
        tables_loaded_bare.connect(rollups.rollups_unbuilt, dispatch_uid="metrics-rollups")
        on_demo_reset(demo.demo_meetings_reset)

        # A published target-account list changes the scorecard's target-account figures.
        from leads.models import TargetAccountListVersion
        from leads.services.definitions import on_definition_published
        from metrics import target_selectors

        on_definition_published(TargetAccountListVersion, target_selectors.forget_snapshots)
        # And the goals on those figures (pipeline and revenue from target accounts).
        from metrics import goal_selectors

        on_definition_published(TargetAccountListVersion, goal_selectors.forget_target_readings)
