from importlib import import_module

from django.conf import settings
from django.db import migrations, models

# 0019's count of the due times not before ``at`` ran as a SQL function call per rollup row (its
# FROM and sub-select keep PostgreSQL from inlining it): ~6,000 calls for a quarter's SLA by
# rep, most of the read. Written as one expression it is inlined into the read; only when a due
# time equals ``at`` exactly (``width_bucket`` counts those at or before ``at``, and "missed"
# is strictly before now) are they counted one by one, by a function called for that row alone.
CREATE_COUNT_FROM = """
CREATE FUNCTION metrics_rollup_due_count_from(due float8[], at float8) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT count(*) FROM unnest(due) AS one WHERE one >= at
$$"""
INLINED_NOT_BEFORE = """
CREATE OR REPLACE FUNCTION metrics_rollup_due_not_before(due float8[], at float8) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN width_bucket(at, due) > 0 AND due[width_bucket(at, due)] = at
            THEN metrics_rollup_due_count_from(due, at)
        ELSE cardinality(due) - width_bucket(at, due)
    END
$$"""


def _inline(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # rollups are PostgreSQL only
        schema_editor.execute(CREATE_COUNT_FROM)
        schema_editor.execute(INLINED_NOT_BEFORE)


def _search(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # back to 0019's function
        searched = import_module("metrics.migrations.0019_sla_due_sorted").CREATE_NOT_BEFORE
        schema_editor.execute(searched.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS metrics_rollup_due_count_from(float8[], float8)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0019_heard_objection_account"),
        ("metrics", "0020_owner_grain_tier"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(_inline, _search),
        migrations.AddIndex(
            model_name="cohortday",
            index=models.Index(fields=["source", "day"], name="cohort_day_source_day"),
        ),
        migrations.AddIndex(
            model_name="handoffday",
            index=models.Index(fields=["source", "day"], name="handoff_day_source_day"),
        ),
        migrations.AddIndex(
            model_name="opportunityday",
            index=models.Index(fields=["source", "day"], name="opportunity_day_source_day"),
        ),
        migrations.AddIndex(
            model_name="stageexitday",
            index=models.Index(fields=["source", "day"], name="stage_exit_day_source_day"),
        ),
    ]
