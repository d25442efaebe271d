"""Publish the default scoring model as v1."""

from django.db import migrations

from leads import defaults


def create_default_model(apps, schema_editor):
    ScoringModel = apps.get_model("scoring", "ScoringModel")
    EventWeight = apps.get_model("scoring", "EventWeight")
    model = ScoringModel.objects.create(
        number=1,
        status="published",
        effective_from=defaults.DEFAULT_EFFECTIVE_FROM,
        published_at=defaults.DEFAULT_EFFECTIVE_FROM,
        note="Default scoring model shipped with the product.",
        **defaults.DEFAULT_SCORING_MODEL,
    )
    EventWeight.objects.bulk_create(
        EventWeight(version=model, kind=kind, points=points, daily_cap=cap)
        for kind, points, cap in defaults.DEFAULT_EVENT_WEIGHTS
    )


class Migration(migrations.Migration):
    dependencies = [("scoring", "0001_initial")]

    operations = [migrations.RunPython(create_default_model, migrations.RunPython.noop)]
