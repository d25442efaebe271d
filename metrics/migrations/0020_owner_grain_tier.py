from importlib import import_module

from django.db import migrations, models

OWNER_GRAINS = {
    "HandoffDay": "HandoffOwnerDay",
    "CohortDay": "CohortOwnerDay",
    "OpportunityDay": "OpportunityOwnerDay",
    "StageExitDay": "StageExitOwnerDay",
}


def _owner_grain_by_tier(apps, schema_editor):
    # The owner grain's rows again, now per owner and tier, summed from the full grain as 0015
    # derived the lead grain; the merged due times sorted as the refresh keeps them (0019).
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.connection.ops.quote_name
    for coarse in OWNER_GRAINS.values():
        schema_editor.execute(
            f"DELETE FROM {quote(apps.get_model('metrics', coarse)._meta.db_table)}"
        )
    import_module("metrics.migrations.0015_rollup_lead_grain").derive_grains(
        apps, schema_editor, OWNER_GRAINS
    )
    for column in ("response_unanswered_due", "accept_undecided_due"):
        schema_editor.execute(
            f"UPDATE metrics_handoffownerday SET {column} = metrics_rollup_due_sorted({column}) "
            f"WHERE cardinality({column}) > 1"
        )


class Migration(migrations.Migration):
    dependencies = [("metrics", "0019_sla_due_sorted")]

    operations = [
        *(
            migrations.AddField(
                model_name=model.lower(),
                name="tier",
                field=models.CharField(default="", max_length=1),
                preserve_default=False,
            )
            for model in ("HandoffOwnerDay", "CohortOwnerDay", "StageExitOwnerDay")
        ),
        migrations.AddField(  # a deal may have no lead
            model_name="opportunityownerday",
            name="tier",
            field=models.CharField(max_length=1, null=True),
        ),
        migrations.RunPython(_owner_grain_by_tier, migrations.RunPython.noop),
    ]
