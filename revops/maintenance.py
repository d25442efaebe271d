"""Table upkeep after bulk writes, right with autovacuum on or off.

A million-row load leaves PostgreSQL with stale planner statistics (it guesses badly on the
first dashboard queries), and, until a VACUUM, rows whose visibility every first reader must
check and write back (hint bits) and no visibility map (index-only scans read the heap anyway).
With autovacuum on, its ANALYZE comes minutes later; with it off (this machine's server), never.
So after a bulk write the app ANALYZEs what it wrote, and VACUUMs it too when autovacuum is off
(``MAINTAIN_VACUUM``: ``auto``, ``always`` or ``never``); and every ten minutes
``tables_tidy`` does what autovacuum would for the tables other writes churned (the breach
sweep, rescores). VACUUM cannot run inside a transaction: call these after the write committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import connection as default_connection
from django.db import models

logger = logging.getLogger(__name__)


def autovacuum_is_on(connection=default_connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0] == "on"


def vacuum_wanted(connection=default_connection) -> bool:
    mode = settings.MAINTAIN_VACUUM
    if mode == "always":
        return True
    if mode == "never":
        return False
    return not autovacuum_is_on(connection)


def tables_maintain(
    model_list: Iterable[type[models.Model]], *, connection=default_connection
) -> str:
    """``VACUUM (ANALYZE)`` or ``ANALYZE`` the models' tables; returns the command run ("" off
    PostgreSQL or inside a transaction, where it would fail)."""
    if not _can_maintain(connection):
        return ""
    command = "VACUUM (ANALYZE)" if vacuum_wanted(connection) else "ANALYZE"
    _run_on_tables(command, model_list, connection)
    return command


def tables_vacuum(
    model_list: Iterable[type[models.Model]], *, connection=default_connection
) -> bool:
    """VACUUM the models' tables when autovacuum will not (``vacuum_wanted``): for tables a task
    empties again and again, whose dead rows every reader would otherwise walk past (no
    ANALYZE: their statistics would say "empty" between two fills). False off PostgreSQL,
    inside a transaction, or when not wanted."""
    if not _can_maintain(connection) or not vacuum_wanted(connection):
        return False
    _run_on_tables("VACUUM", model_list, connection)
    return True


def _can_maintain(connection) -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _run_on_tables(command: str, model_list: Iterable[type[models.Model]], connection) -> None:
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in model_list)
    with connection.cursor() as cursor:
        cursor.execute(f"{command} {tables}")
    logger.info("%s %s", command, tables)


def after_bulk_write(model_list: Iterable[type[models.Model]], rows: int) -> str:
    """Maintain the tables when the write was big enough to skew their statistics."""
    if rows < settings.MAINTAIN_AFTER_ROWS:
        return ""
    return tables_maintain(model_list)


# What PostgreSQL's autovacuum would do with its default thresholds, for a server where it is off.
VACUUM_BASE, VACUUM_SHARE = 50, 0.2
VACUUM_INSERT_BASE, VACUUM_INSERT_SHARE = 1000, 0.2
ANALYZE_BASE, ANALYZE_SHARE = 50, 0.1


def tables_tidy(connection=default_connection) -> dict[str, list[str]]:
    """When the server's autovacuum is off (and ``MAINTAIN_VACUUM`` is not ``never``): VACUUM
    (ANALYZE) every table whose dead rows or inserts passed autovacuum's default thresholds,
    ANALYZE every table changed that much since its statistics, or holding rows and never
    analyzed. The breach sweep, rescores and imports update hundreds of thousands of rows;
    without this their dead versions stay in every scan and the planner works from stale
    counts. With autovacuum on, it does nothing."""
    done: dict[str, list[str]] = {"vacuumed": [], "analyzed": []}
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return done
    if not vacuum_wanted(connection):
        return done
    with connection.cursor() as cursor:
        # A table holding rows that was never analyzed (reltuples -1: loaded by a bulk path
        # that analyzed only its own tables, or a database copied or restored, whose activity
        # counters start from zero) is analyzed too: the planner would guess its size from
        # its pages and pick hash joins over the whole of its neighbours. So is one holding
        # rows without column statistics: a trigger-kept table analyzed empty by its migration
        # (reltuples 0) and filled since, in a copy whose counters say nothing changed; without
        # a lead_id distribution the meeting's content slide scanned every content event
        # instead of a few thousand leads' index ranges.
        cursor.execute(
            """
            SELECT s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
                   s.n_ins_since_vacuum,
                   pg_relation_size(c.oid) > 0
                   AND (c.reltuples < 0 OR NOT EXISTS (
                       SELECT 1 FROM pg_stats t
                       WHERE t.schemaname = s.schemaname AND t.tablename = s.relname
                   ))
            FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE s.schemaname = current_schema()
            ORDER BY s.relname
            """
        )
        rows = cursor.fetchall()
        quote = connection.ops.quote_name
        for table, live, dead, modified, inserted, never_analyzed in rows:
            # Inserts alone call for a VACUUM too (as autovacuum since PostgreSQL 13): it sets
            # the visibility map, without which an index-only scan reads the heap anyway (a
            # trigger-filled table such as leads_contentevent is only ever inserted into).
            if (
                dead > VACUUM_BASE + VACUUM_SHARE * live
                or inserted > VACUUM_INSERT_BASE + VACUUM_INSERT_SHARE * live
            ):
                cursor.execute(f"VACUUM (ANALYZE) {quote(table)}")
                done["vacuumed"].append(table)
            elif never_analyzed or modified > ANALYZE_BASE + ANALYZE_SHARE * live:
                cursor.execute(f"ANALYZE {quote(table)}")
                done["analyzed"].append(table)
    if done["vacuumed"] or done["analyzed"]:
        logger.info("Tidied tables: %s", done)
    return done
