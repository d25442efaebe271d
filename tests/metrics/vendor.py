"""What a KPI's query count depends on the database for: the daily rollups, and so the query
that reads their state, exist on PostgreSQL only (SQLite, the embedded run, reads raw facts)."""

from django.db import connection

ON_POSTGRESQL = connection.vendor == "postgresql"


def rollup_states(count: int) -> int:
    """The rollup-state queries of ``count`` rollup-backed reads, on this database."""
    return count if ON_POSTGRESQL else 0
