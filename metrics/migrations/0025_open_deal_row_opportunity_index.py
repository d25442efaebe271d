from django.db import migrations, models

# The goals' forecasts read every open opportunity's lead stage; from the kept open-deal rows
# through this index (index-only, ~11,000 entries at 1M leads) rather than a probe of the lead
# table per deal. SQLite builds it without the included columns.


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0021_lead_tier_unindexed"),
        ("metrics", "0024_rollup_lead_marks_by_key"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="opendealrow",
            index=models.Index(
                condition=models.Q(("kind", "opportunity"), ("objection__isnull", True)),
                fields=["deal_id"],
                include=("lead", "lead_stage"),
                name="open_deal_row_opportunity",
            ),
        ),
    ]
