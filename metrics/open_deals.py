"""The open deals the meeting's content slide groups by stage and objection (``OpenDealRow``),
kept per lead and counted per group (``OpenDealGroup``), so that its first view of the week sums
a few thousand rows instead of joining every handoff to its lead and to the objections heard
(1.6–2.3 s at 1M leads).

Triggers (migration 0022) mark the leads whose deals, objections, stage or account changed;
``open_deals_refresh`` (run by the rollup refresh, under its lock and in its transaction) takes
the marks and recomputes those leads' rows, or builds them all when they are not built (never,
or after a TRUNCATE or a bulk load with the triggers off). A read computes the marked leads'
rows itself (``deal_rows_sql`` with a cut at its instant), so it is exact between refreshes, and
so are those of leads with a fact dated after its instant.
PostgreSQL only, like the rollups.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from metrics.rollup_models import (
    OpenDealDirty,
    OpenDealGroup,
    OpenDealRow,
    RollupFact,
    RollupState,
)

_ROWS = OpenDealRow._meta.db_table
_GROUPS = OpenDealGroup._meta.db_table
_DIRTY = OpenDealDirty._meta.db_table
_GROUP_KEY = "kind, stage, outcome, lead_stage, objection_key, heard_any, industry"
_ROW_GROUP_KEY = "kind, stage, outcome, lead_stage, COALESCE(objection_id, 0), heard_any, industry"
_COLUMNS = (
    "lead_id, kind, deal_id, stage, outcome, lead_stage, objection_id, heard_any, amount, "
    "industry, since"
)

# A lead's open deals (the content slide's definition, ``queries.content``): its open
# opportunities, its pending handoffs and its accepted ones while it has no opportunity; each
# once as itself and once per objection the lead heard. ``{leads}`` restricts the leads
# (a condition on ``lead_id``); ``{deal_cut}`` and ``{heard_cut}`` the instants (a read's
# ``now``), empty for the kept rows, which record in ``since`` the latest instant they
# depend on instead.
_DEAL_ROWS_SQL = """
WITH deals AS (
    SELECT o.lead_id, 'opportunity' AS kind, o.id AS deal_id, o.stage::text AS stage,
           '' AS outcome, o.amount, o.account_id, o.created_at AS at
    FROM leads_opportunity o
    WHERE o.status = 'open' AND o.lead_id {leads} {deal_cut_opportunity}
    UNION ALL
    SELECT h.lead_id, 'handoff', h.id, h.stage::text, h.outcome::text, NULL, NULL, h.assigned_at
    FROM leads_handoff h
    WHERE h.lead_id {leads} {deal_cut_handoff}
      AND (h.outcome = 'pending'
           OR h.outcome = 'accepted'
              AND NOT EXISTS (SELECT 1 FROM leads_opportunity x WHERE x.lead_id = h.lead_id))
),
heard AS (
    SELECT lead_id, objection_id, MIN(occurred_at) AS first_at
    FROM leads_heardobjection
    WHERE lead_id {leads} {heard_cut}
    GROUP BY lead_id, objection_id
),
heard_first AS (
    SELECT lead_id, MIN(first_at) AS first_at FROM heard GROUP BY lead_id
),
deal_rows AS (
    -- A deal's industry: an opportunity's account's, else its lead's account's; a handoff's
    -- lead's account's.
    SELECT d.*, l.stage AS lead_stage,
           CASE WHEN d.kind = 'opportunity'
                THEN COALESCE(NULLIF(oa.industry, ''), la.industry, '')
                ELSE COALESCE(la.industry, '') END AS industry
    FROM deals d
    JOIN leads_lead l ON l.id = d.lead_id
    LEFT JOIN leads_account la ON la.id = l.account_id
    LEFT JOIN leads_account oa ON oa.id = d.account_id
)
SELECT d.lead_id, d.kind, d.deal_id, d.stage, d.outcome, d.lead_stage,
       NULL::bigint AS objection_id, f.lead_id IS NOT NULL AS heard_any, d.amount, d.industry,
       GREATEST(d.at, f.first_at) AS since
FROM deal_rows d
LEFT JOIN heard_first f ON f.lead_id = d.lead_id
UNION ALL
SELECT d.lead_id, d.kind, d.deal_id, d.stage, d.outcome, d.lead_stage, h.objection_id, TRUE,
       d.amount, d.industry, GREATEST(d.at, h.first_at)
FROM deal_rows d
JOIN heard h ON h.lead_id = d.lead_id
"""


def deal_rows_sql(leads: str, *, cut: str = "") -> str:
    """The open-deal rows of the leads ``lead_id {leads}`` (e.g. ``= ANY(%(leads)s)``); with
    ``cut`` (a parameter, e.g. ``%(now)s``), as they stood at that instant."""
    return _DEAL_ROWS_SQL.format(
        leads=leads,
        deal_cut_opportunity=f"AND o.created_at <= {cut}" if cut else "",
        deal_cut_handoff=f"AND h.assigned_at <= {cut}" if cut else "",
        heard_cut=f"AND occurred_at <= {cut}" if cut else "",
    )


# The leads a read computes from the raw facts instead of taking their kept rows: those marked
# since the last refresh, and those whose rows depend on an instant after the read's ``now``
# (a deal or an objection dated later: as they stood at ``now`` is not what is kept).
FRESH_LEADS_SQL = f"""
SELECT lead_id FROM {_DIRTY}
UNION
SELECT lead_id FROM {_ROWS} WHERE since > %(now)s
"""
# Past this many of them (a bulk write the refresh has not reached yet: a backlog of new
# handoffs, a publish's stage moves), computing theirs at read time costs what the raw
# statement costs: the raw facts answer until the refresh has caught up.
FRESH_LEADS_AT_MOST = 25_000
# Past this many marked leads a refresh rebuilds every row instead (at 1M leads: 147k marked
# leads took 11.5 s lead by lead, the whole rebuild 8.6 s).
REBUILD_PAST_LEADS = 100_000


def open_deals_answer(cursor, now) -> bool:
    """Whether the kept rows answer for ``now``: built, with at most ``FRESH_LEADS_AT_MOST``
    leads to compute from the raw facts (``FRESH_LEADS_SQL``)."""
    if cursor.db.vendor != "postgresql":
        return False
    cursor.execute(
        f"""
        SELECT EXISTS (SELECT 1 FROM {RollupState._meta.db_table} WHERE fact = %(fact)s AND built)
           AND (SELECT count(*) FROM ({FRESH_LEADS_SQL} LIMIT %(over)s) AS fresh) < %(over)s
        """,
        {"fact": RollupFact.OPEN_DEALS.value, "now": now, "over": FRESH_LEADS_AT_MOST + 1},
    )
    return cursor.fetchone()[0]


def _groups_add(cursor, where: str, params: dict, *, sign: int) -> None:
    """Add the rows ``where`` selects to their groups (``sign`` -1: take them away)."""
    cursor.execute(
        f"""
        INSERT INTO {_GROUPS} AS g ({_GROUP_KEY}, deals, amount)
        SELECT {_ROW_GROUP_KEY}, {sign} * COUNT(*), {sign} * COALESCE(SUM(amount), 0)
        FROM {_ROWS} {where}
        GROUP BY {_ROW_GROUP_KEY}
        ON CONFLICT ({_GROUP_KEY})
        DO UPDATE SET deals = g.deals + EXCLUDED.deals, amount = g.amount + EXCLUDED.amount
        """,
        params,
    )


def open_deals_refresh(*, rebuild: bool = False) -> int:
    """Recompute the open-deal rows of the leads marked since the last refresh, or all of them
    (``rebuild``, when they are not built, or past ``REBUILD_PAST_LEADS`` marked leads).
    Returns the number of leads recomputed, -1 for a rebuild. Call it inside a transaction
    holding the rollups' lock: the marks it takes come back if the transaction fails."""
    now = timezone.now()
    state = RollupState.objects.select_for_update().filter(fact=RollupFact.OPEN_DEALS).first()
    with connection.cursor() as cursor:
        leads: list[int] = []
        if not rebuild and state is not None and state.built:
            cursor.execute(f"DELETE FROM {_DIRTY} RETURNING lead_id")
            leads = sorted({lead_id for (lead_id,) in cursor.fetchall()})
            rebuild = len(leads) > REBUILD_PAST_LEADS
        if rebuild or state is None or not state.built:
            cursor.execute(f"DELETE FROM {_DIRTY}")
            # Not TRUNCATE: readers of the slide would wait for the whole rebuild.
            cursor.execute(f"DELETE FROM {_ROWS}")
            cursor.execute(f"DELETE FROM {_GROUPS}")
            cursor.execute(f"INSERT INTO {_ROWS} ({_COLUMNS}) {deal_rows_sql('IS NOT NULL')}")
            _groups_add(cursor, "", {}, sign=1)
            RollupState.objects.update_or_create(
                fact=RollupFact.OPEN_DEALS,
                defaults={"built": True, "built_at": now, "refreshed_at": now},
            )
            return -1
        if leads:
            of_leads = "WHERE lead_id = ANY(%(leads)s)"
            _groups_add(cursor, of_leads, {"leads": leads}, sign=-1)
            cursor.execute(f"DELETE FROM {_ROWS} {of_leads}", {"leads": leads})
            cursor.execute(
                f"INSERT INTO {_ROWS} ({_COLUMNS}) {deal_rows_sql('= ANY(%(leads)s)')}",
                {"leads": leads},
            )
            _groups_add(cursor, of_leads, {"leads": leads}, sign=1)
            cursor.execute(f"DELETE FROM {_GROUPS} WHERE deals = 0")
    state.refreshed_at = now
    state.save(update_fields=["refreshed_at"])
    return len(leads)
