from django.db import migrations, models

# Every statement that writes accounts bumps the counter; fits built at an older value are
# stale (scoring.bulk.account_fits_built). A sequence: bumping it takes no lock, so writers of
# accounts never wait for each other on it, and a rolled-back write only costs a rebuild.
CREATE = """
CREATE SEQUENCE scoring_account_fit_epoch;
CREATE FUNCTION scoring_account_fit_epoch_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('scoring_account_fit_epoch');
    RETURN NULL;
END $$;
CREATE TRIGGER scoring_account_fit_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON leads_account FOR EACH STATEMENT EXECUTE FUNCTION scoring_account_fit_epoch_bump();
DELETE FROM scoring_accountfitbuild;
"""
DROP = """
DROP TRIGGER IF EXISTS scoring_account_fit_epoch ON leads_account;
DROP FUNCTION IF EXISTS scoring_account_fit_epoch_bump();
DROP SEQUENCE IF EXISTS scoring_account_fit_epoch;
"""


def _epoch(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def _no_epoch(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("scoring", "0010_publish_fit"), ("leads", "0016_content_events")]

    operations = [
        migrations.AddField(
            model_name="accountfitbuild",
            name="epoch",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(_epoch, _no_epoch),
    ]
