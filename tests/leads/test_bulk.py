"""The bulk layer's reads: key lookups return the rows they match, and on PostgreSQL read
only those rows, whatever the table's statistics say."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import EventKey, Lead
from leads.services.bulk import rows_matching
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_rows_matching_finds_each_key_once_and_ignores_blanks():
    one = LeadFactory(external_id="L-1")
    LeadFactory(external_id="")
    two = LeadFactory(external_id="L-2")

    found = rows_matching(Lead, "external_id", ["L-2", "L-1", "L-2", "", "L-9"], ["pk"])

    assert sorted(row["pk"] for row in found) == sorted([one.pk, two.pk])


def test_rows_matching_filters_on_the_other_columns_given():
    EventKey.objects.create(source_system="a", external_id="E1", occurred_at="2026-03-01T00:00Z")
    EventKey.objects.create(source_system="b", external_id="E1", occurred_at="2026-03-01T00:00Z")

    found = rows_matching(
        EventKey, "external_id", ["E1"], ["source_system"], where={"source_system": "b"}
    )

    assert found == [{"source_system": "b"}]


def _rows_read(plan: dict) -> int:
    """The most rows any node of an EXPLAIN ANALYZE plan produced or threw away."""
    read = plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
    read += plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
    return max([read, *(_rows_read(child) for child in plan.get("Plans", []))])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL plan")
def test_key_lookup_probes_the_index_per_key_on_a_table_never_analyzed():
    """The key table of events is written by a trigger and, with autovacuum off, may never be
    analyzed: a lookup of a chunk's keys must still probe the index per key, not read every key
    of the source system (2 s a chunk of 5,000 at 10M keys)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO leads_eventkey (source_system, external_id, occurred_at) "
            "SELECT 'hubspot', 'E-' || n, now() FROM generate_series(1, 30000) AS n"
        )
    keys = [f"E-{n}" for n in range(1, 30000, 15)]  # 2,000 of them

    with CaptureQueriesContext(connection) as queries:
        found = rows_matching(
            EventKey, "external_id", keys, ["external_id"], where={"source_system": "hubspot"}
        )
    [query] = queries.captured_queries
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query['sql']}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    assert len(found) == len(keys)
    assert _rows_read(plan[0]["Plan"]) <= len(keys)
