# The score state's version keys lose their database constraints: a publish changes them on
# every row, and the row-by-row foreign-key checks at commit cost 9 s of a million-lead publish.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0008_score_state_email_domain"),
    ]

    operations = [
        migrations.AlterField(
            model_name="leadscorestate",
            name="icp_version",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="leads.icpversion",
            ),
        ),
        migrations.AlterField(
            model_name="leadscorestate",
            name="scoring_model",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="scoring.scoringmodel",
            ),
        ),
        migrations.AlterField(
            model_name="leadscorestate",
            name="sums_model",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="scoring.scoringmodel",
            ),
        ),
    ]
