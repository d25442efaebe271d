from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0011_account_fit_epoch"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountfit",
            name="matches",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="leadscorestate",
            name="fit_conditions",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="leadscorestate",
            name="fit_matches",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        # Fits built before hold no matches: the next refit that needs them builds them again.
        migrations.RunSQL(
            "DELETE FROM scoring_accountfitbuild", reverse_sql=migrations.RunSQL.noop
        ),
    ]
