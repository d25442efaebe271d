"""Content utilization KPIs: how sales uses marketing's assets (docs/kpis.md, "Content")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial

from django.core.exceptions import EmptyResultSet
from django.db import connections, router
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.expressions import RawSQL

from leads.models import (
    ContentAsset,
    ContentEvent,
    ContentShare,
    Handoff,
    Lead,
    LeadActivity,
    Opportunity,
)
from metrics import kpis, open_deals
from metrics.kpis import NO_FILTERS, KpiFilters, Period
from metrics.queries.common import (
    _in,
    _lead_q,
    _opportunities,
    _owner_q,
)
from metrics.queries.handoffs import lead_acceptance
from metrics.queries.revenue import opportunities_created
from revops.concurrent_reads import run_concurrently

# --- Content utilization ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContentUtilization:
    """How sales uses marketing's content.

    Of the leads handed off in the period, those sales shared at least one asset with; of the
    opportunities created in the period, those whose lead sales shared an asset with, and those
    whose lead engaged with an asset before the opportunity was created.
    """

    handed_off_leads: int
    handed_off_leads_with_share: int
    handed_off_share_rate: float | None
    opportunities: int
    opportunities_with_share: int
    opportunity_share_rate: float | None
    opportunities_with_prior_engagement: int
    prior_engagement_rate: float | None


def _shared_with(lead_ref: OuterRef) -> Exists:
    # One index probe of the narrow share table (its lead index), not every share joined to
    # its touch.
    return Exists(ContentShare.objects.filter(lead=lead_ref))


def handed_off_leads(period: Period, filters: KpiFilters = NO_FILTERS) -> QuerySet[Lead]:
    """Drill-down: leads with a handoff assigned in the period (to the filtered owners)."""
    handoffs = Handoff.objects.filter(
        _in("assigned_at", period), _owner_q(filters, "assignee"), lead=OuterRef("pk")
    )
    return (
        Lead.objects.filter(_lead_q(filters), Exists(handoffs))
        .annotate(asset_shared=_shared_with(OuterRef("pk")))
        .select_related("source", "owner")
        .order_by("-created_at", "-pk")
    )


def created_opportunities(
    period: Period, filters: KpiFilters = NO_FILTERS
) -> QuerySet[Opportunity]:
    """Drill-down: opportunities created in the period, annotated with ``asset_shared`` and
    ``asset_engaged_before`` (their lead engaged with an asset before the opportunity)."""
    # The content-linked events (retired ones included), one index probe per opportunity
    # instead of one per month partition of the event table.
    engaged_before = ContentEvent.objects.filter(
        lead=OuterRef("lead_id"), occurred_at__lt=OuterRef("created_at")
    )
    return (
        _opportunities(filters)
        .filter(_in("created_at", period))
        .annotate(
            asset_shared=_shared_with(OuterRef("lead_id")),
            asset_engaged_before=Exists(engaged_before),
        )
        .select_related("lead__source", "owner")
        .order_by("-created_at", "-pk")
    )


# The leads of the period's handoffs (``{rows}``: their lead ids) that count twice or more,
# or were shared an asset; only those rows meet the lead filters (``{lead_filter}``), one index
# probe each: the rest of the count comes from the rollups.
_MARKED_LEADS_SQL = """
WITH per_lead AS (
    SELECT h.lead_id, COUNT(*) AS n FROM ({rows}) h GROUP BY h.lead_id
),
marked_leads AS MATERIALIZED (
    SELECT x.lead_id, x.n, x.shared FROM (
        -- A hashed lookup of the leads ever shared an asset (one hash of the share table's
        -- lead ids), not their distinct list joined to every lead of the period.
        SELECT p.lead_id, p.n, p.lead_id IN (SELECT lead_id FROM leads_contentshare) AS shared
        FROM per_lead p
    ) x
    WHERE x.n > 1 OR x.shared
)
SELECT CAST(COALESCE(SUM(m.n - 1), 0) AS bigint), COUNT(*) FILTER (WHERE m.shared)
FROM marked_leads m WHERE {lead_filter}
"""
# The period's new deals (``{rows}``) whose lead was shared an asset, or engaged with one
# before the deal; only those meet the lead filters.
_MARKED_DEALS_SQL = """
WITH marked_deals AS MATERIALIZED (
    SELECT x.lead_id, x.shared, x.engaged FROM (
        SELECT d.lead_id,
               EXISTS (SELECT 1 FROM leads_contentshare s WHERE s.lead_id = d.lead_id) AS shared,
               EXISTS (SELECT 1 FROM leads_contentevent e
                       WHERE e.lead_id = d.lead_id AND e.occurred_at < d.created_at) AS engaged
        FROM ({rows}) d
        WHERE d.lead_id IS NOT NULL
    ) x
    WHERE x.shared OR x.engaged
)
SELECT COUNT(*) FILTER (WHERE m.shared), COUNT(*) FILTER (WHERE m.engaged)
FROM marked_deals m WHERE {lead_filter}
"""


# What a part reads when its filters select nothing (Django refuses to write an empty IN).
_NO_HANDOFFS = "SELECT CAST(NULL AS bigint) AS lead_id WHERE 1 = 0"
_NO_DEALS = (
    "SELECT CAST(NULL AS bigint) AS lead_id, CAST(NULL AS timestamptz) AS created_at WHERE 1 = 0"
)


def _sql(queryset: QuerySet, empty: str) -> tuple[str, list]:
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return empty, []
    return sql, list(params)


def _lead_filter_sql(filters: KpiFilters, vendor: str, lead_id: str) -> tuple[str, list]:
    """The lead filters as a condition on the lead id column ``lead_id``: a correlated probe
    of the lead's row, kept one by ``OFFSET 0`` (planned as a join, it read every lead the
    filter selects: tens of thousands of pages of the lead table for a source or a tier)."""
    condition = _lead_q(filters)
    if not condition:
        return "1 = 1", []
    leads = Lead.objects.filter(condition, pk=RawSQL(lead_id, ())).order_by().values("pk")
    sql, params = _sql(leads, "")
    if not sql:
        return "1 = 0", []
    fence = " OFFSET 0" if vendor == "postgresql" else ""
    return f"EXISTS ({sql}{fence})", params


def _marked(
    alias: str, template: str, rows: tuple[str, list], lead_filter: tuple[str, list]
) -> tuple:
    """One of the marked sets counted (``template`` over ``rows``, under the lead filter)."""
    (rows_sql, rows_params), (filter_sql, filter_params) = rows, lead_filter
    with connections[alias].cursor() as cursor:
        cursor.execute(
            template.format(rows=rows_sql, lead_filter=filter_sql), [*rows_params, *filter_params]
        )
        return cursor.fetchone()


def content_utilization(period: Period, filters: KpiFilters = NO_FILTERS) -> ContentUtilization:
    """The period's handed-off leads and new deals, and those sales shared an asset with (or
    that engaged with one before the deal), as ``handed_off_leads`` and
    ``created_opportunities`` list them.

    The totals come from the rollups (``lead_acceptance``: every handoff of the period,
    ``opportunities_created``). A lead handed off twice in the period is one lead: the lead
    ids of the period's handoffs are counted per lead (an index-only read) and the repeats
    taken off. Those repeats and the leads and deals sales shared an asset with (a narrow
    table kept by trigger) are the few rows the lead filters are probed for; a deal engaged
    before is probed once in the content events' lead index."""
    connection = connections[router.db_for_read(Handoff)]
    handoff_leads = (
        Handoff.objects.filter(_in("assigned_at", period), _owner_q(filters, "assignee"))
        .order_by()
        .values("lead_id")
    )
    deals = (
        Opportunity.objects.filter(_in("created_at", period), _owner_q(filters, "owner"))
        .order_by()
        .values("lead_id", "created_at")
    )
    handoffs = _sql(handoff_leads, _NO_HANDOFFS)
    deals = _sql(deals, _NO_DEALS)
    lead_filter = _lead_filter_sql(filters, connection.vendor, '"m"."lead_id"')

    alias = connection.alias
    # The two marked sets and the rollups' totals are independent: read side by side.
    (repeats, leads_shared), (deals_shared, deals_engaged), acceptance, opportunities = (
        run_concurrently(
            [
                partial(_marked, alias, _MARKED_LEADS_SQL, handoffs, lead_filter),
                partial(_marked, alias, _MARKED_DEALS_SQL, deals, lead_filter),
                partial(lead_acceptance, period, filters),
                partial(opportunities_created, period, filters),
            ]
        )
    )
    leads = acceptance.accepted + acceptance.rejected + acceptance.pending - repeats
    opportunities = opportunities.count
    return ContentUtilization(
        handed_off_leads=leads,
        handed_off_leads_with_share=leads_shared,
        handed_off_share_rate=kpis.rate(leads_shared, leads),
        opportunities=opportunities,
        opportunities_with_share=deals_shared,
        opportunity_share_rate=kpis.rate(deals_shared, opportunities),
        opportunities_with_prior_engagement=deals_engaged,
        prior_engagement_rate=kpis.rate(deals_engaged, opportunities),
    )


@dataclass(frozen=True)
class AssetUse:
    asset_id: int
    title: str
    asset_type: str
    funnel_stage: str
    shares: int  # sales activities in the period that shared it
    leads: int  # distinct leads it was shared with


@dataclass(frozen=True)
class AssetUsage:
    """Per funnel stage (tofu, mofu, bofu), the assets sales shared most in the period, most
    first; and the assets sales never shared in the period."""

    most_used: dict[str, tuple[AssetUse, ...]]
    unused: tuple[AssetUse, ...]


def _share_q(period: Period, filters: KpiFilters, activity: str = "") -> Q:
    return (
        _in(f"{activity}occurred_at", period)
        & _lead_q(filters, f"{activity}lead__")
        & _owner_q(filters, f"{activity}actor")
    )


def asset_shares(
    period: Period, filters: KpiFilters = NO_FILTERS, *, asset_id: int | None = None
) -> QuerySet[LeadActivity]:
    """Drill-down: sales activities in the period that shared an asset (or this asset)."""
    activities = LeadActivity.objects.filter(_share_q(period, filters))
    if asset_id is None:
        activities = activities.filter(content_assets__isnull=False).distinct()
    else:
        activities = activities.filter(content_assets=asset_id)
    return activities.select_related("lead", "actor").order_by("-occurred_at", "-pk")


def _probed_lead_q(filters: KpiFilters) -> Q:
    """The lead filters on the period's shares (thousands, where a filter selects hundreds of
    thousands of leads): each share's lead probed by its key."""
    condition = _lead_q(filters)
    if not condition:
        return Q()
    vendor = connections[router.db_for_read(ContentShare)].vendor
    sql, params = _lead_filter_sql(filters, vendor, '"leads_contentshare"."lead_id"')
    return Q(RawSQL(sql, params, output_field=BooleanField()))


def asset_usage(period: Period, filters: KpiFilters = NO_FILTERS, *, top: int = 5) -> AssetUsage:
    # The period's shares counted per asset from the narrow share table (its instant's index;
    # the lead joined only for lead filters), then the library.
    counted = {
        row["content_asset_id"]: row
        for row in ContentShare.objects.filter(
            _in("occurred_at", period), _owner_q(filters, "actor"), _probed_lead_q(filters)
        )
        .order_by()
        .values("content_asset_id")
        .annotate(shares=Count("pk"), leads=Count("lead_id", distinct=True))
    }
    rows = ContentAsset.objects.order_by().values("pk", "title", "asset_type", "funnel_stage")
    # One row per asset (a library of tens or hundreds): ranking them is presentation.
    assets = sorted(
        (
            AssetUse(
                row["pk"],
                row["title"],
                row["asset_type"],
                row["funnel_stage"],
                counted.get(row["pk"], {}).get("shares", 0),
                counted.get(row["pk"], {}).get("leads", 0),
            )
            for row in rows
        ),
        key=lambda asset: (-asset.shares, -asset.leads, asset.title.lower(), asset.asset_id),
    )
    most_used: dict[str, list[AssetUse]] = defaultdict(list)
    for asset in assets:
        if asset.shares and len(most_used[asset.funnel_stage]) < top:
            most_used[asset.funnel_stage].append(asset)
    return AssetUsage(
        most_used={stage: tuple(used) for stage, used in most_used.items()},
        unused=tuple(asset for asset in assets if not asset.shares),
    )


# --- Content that could support open deals (the weekly meeting's content slide) --------------

OPEN_DEAL_KINDS = ("opportunity", "handoff")


@dataclass(frozen=True)
class HelpfulAsset:
    asset_id: int
    title: str
    asset_type: str
    funnel_stage: str
    won_deals: int  # similar won deals that used it at the same stage


@dataclass(frozen=True)
class OpenDealGroup:
    """Open deals at one stage that heard one objection (``objection_key`` None: deals where
    no objection was logged), and the assets most used by similar won deals at that stage.

    ``kind`` is "opportunity" (``stage`` an opportunity stage) or "handoff" (a lifecycle stage
    key). ``open_requests``: content requests still open for this stage and objection.
    """

    kind: str
    stage: str
    objection_key: str | None
    objection_label: str | None
    deals: int
    amount: Decimal
    similar_won: int
    open_requests: int
    assets: tuple[HelpfulAsset, ...]


@dataclass(frozen=True)
class OpenDealContent:
    groups: tuple[OpenDealGroup, ...]
    group_count: int  # all groups, the shown ones included
    open_handoffs: int = 0  # the handoffs sales is still working (``meeting.open_handoffs``)


_RAW_OPEN_GROUPS_SQL = """

WITH lead_objections AS MATERIALIZED (
    -- Objections heard on a lead's touches, with the lead's account (the narrow table kept
    -- with the touches' links, not every link joined to its touch): the deal's objections.
    SELECT DISTINCT lead_id, objection_id, account_id
    FROM leads_heardobjection WHERE occurred_at <= %(now)s
),
open_deal_rows AS MATERIALIZED (
    -- No industry here: only the groups shown need one (below).
    SELECT 'opportunity' AS kind, o.stage::text AS stage, o.id AS deal_id, o.lead_id,
           o.account_id, o.amount
    FROM leads_opportunity o
    WHERE o.status = 'open' AND o.created_at <= %(now)s
    UNION ALL
    -- Handoffs sales is still working: undecided, or accepted with the lead still in an open
    -- sales stage and no opportunity yet. Two parts, so that the second reads the open-stage
    -- leads from the index lead_stage_entered instead of every lead.
    SELECT 'handoff', h.stage::text, h.id, h.lead_id, NULL, NULL
    FROM leads_handoff h
    WHERE h.assigned_at <= %(now)s AND h.outcome = 'pending'
    UNION ALL
    SELECT 'handoff', h.stage::text, h.id, h.lead_id, NULL, NULL
    FROM leads_handoff h
    JOIN leads_lead l ON l.id = h.lead_id AND l.stage = ANY(%(open_stages)s)
    WHERE h.assigned_at <= %(now)s AND h.outcome = 'accepted'
      AND NOT EXISTS (SELECT 1 FROM leads_opportunity x WHERE x.lead_id = h.lead_id)
),
open_handoffs AS (
    -- Counted here, where they are read anyway, for the slide's headline.
    SELECT COUNT(*) AS n FROM open_deal_rows WHERE kind = 'handoff'
),
objection_deals AS MATERIALIZED (
    -- A deal once per objection its lead heard (a group's rows are distinct deals), with its
    -- own account and its lead's.
    SELECT d.kind, d.stage, d.deal_id, d.amount, d.account_id,
           lo.account_id AS lead_account_id, lo.objection_id
    FROM open_deal_rows d
    JOIN lead_objections lo ON lo.lead_id = d.lead_id
),
open_groups AS (
    SELECT kind, stage, objection_id, COUNT(*) AS deals, COALESCE(SUM(amount), 0) AS amount
    FROM objection_deals
    GROUP BY kind, stage, objection_id
    UNION ALL
    -- The deals whose lead heard none.
    SELECT d.kind, d.stage, NULL, COUNT(*), COALESCE(SUM(d.amount), 0)
    FROM open_deal_rows d
    WHERE NOT EXISTS (SELECT 1 FROM lead_objections lo WHERE lo.lead_id = d.lead_id)
    GROUP BY d.kind, d.stage
),
"""

# The same groups from the rows kept per lead (``metrics.open_deals``), and those of the leads
# marked since the last refresh computed here from the raw facts.
_KEPT_OPEN_GROUPS_SQL = """
WITH lead_objections AS (
    -- Objections heard by ``now``: the similar won deals' (below), by lead and objection
    -- through the index heard_objection_lead.
    SELECT lead_id, objection_id FROM leads_heardobjection WHERE occurred_at <= %(now)s
),
dirty AS MATERIALIZED (
    -- Leads whose deals changed since the last refresh, or with a fact dated after ``now``:
    -- theirs are computed here, as they stand at ``now``.
{fresh_leads}
),
fresh_rows AS MATERIALIZED (
{fresh_rows}
),
open_sets AS (
    -- The kept groups (``metrics.open_deals``: deals per stage, outcome, lead stage, objection
    -- and industry), less the marked leads' kept rows, plus their rows as they stand now, plus
    -- the opportunities without a lead (not kept: no lead to key them by; by the status index).
    SELECT kind, stage, outcome, lead_stage, objection_key, heard_any, industry, deals, amount
    FROM metrics_opendealgroup
    UNION ALL
    SELECT kind, stage, outcome, lead_stage, COALESCE(objection_id, 0), heard_any, industry, -1,
           -COALESCE(amount, 0)
    FROM metrics_opendealrow WHERE lead_id IN (SELECT lead_id FROM dirty)
    UNION ALL
    SELECT kind, stage, outcome, lead_stage, COALESCE(objection_id, 0), heard_any, industry, 1,
           COALESCE(amount, 0)
    FROM fresh_rows
    UNION ALL
    SELECT 'opportunity', o.stage::text, '', '', 0, FALSE, COALESCE(NULLIF(oa.industry, ''), ''),
           1, o.amount
    FROM leads_opportunity o
    LEFT JOIN leads_account oa ON oa.id = o.account_id
    WHERE o.status = 'open' AND o.lead_id IS NULL AND o.created_at <= %(now)s
),
open_now AS MATERIALIZED (
    -- Accepted handoffs count only while their lead is in an open sales stage.
    SELECT * FROM open_sets
    WHERE kind = 'opportunity' OR outcome = 'pending' OR lead_stage = ANY(%(open_stages)s)
),
open_handoffs AS (
    SELECT COALESCE(SUM(deals), 0) AS n FROM open_now
    WHERE kind = 'handoff' AND objection_key = 0
),
open_deal_sets AS MATERIALIZED (
    -- A deal in each objection group its lead heard, or in its stage's group without one;
    -- per industry, for the groups shown.
    SELECT kind, stage, NULLIF(objection_key, 0) AS objection_id, industry,
           SUM(deals) AS deals, SUM(amount) AS amount
    FROM open_now
    WHERE objection_key <> 0 OR NOT heard_any
    GROUP BY kind, stage, objection_key, industry
    HAVING SUM(deals) > 0
),
open_groups AS (
    SELECT kind, stage, objection_id, SUM(deals) AS deals, SUM(amount) AS amount
    FROM open_deal_sets
    GROUP BY kind, stage, objection_id
),
"""

_TOP_GROUPS_SQL = """top_groups AS MATERIALIZED (
    SELECT g.*,
           ROW_NUMBER() OVER (
               ORDER BY g.objection_id IS NULL, g.deals DESC, g.amount DESC, g.kind DESC,
                        g.stage, g.objection_id
           ) AS position,
           COUNT(*) OVER () AS group_count
    FROM open_groups g
    ORDER BY position
    LIMIT %(top)s
),
"""

_RAW_SHOWN_SQL = """shown_accounts AS (
    -- The accounts of the shown groups' deals: from the objection rows; for a group without
    -- objection (shown only when fewer groups heard one), its deals' leads' (looked up only
    -- then: the lateral part runs once per such group).
    SELECT DISTINCT s.position, od.kind, od.account_id, od.lead_account_id
    FROM top_groups s
    JOIN objection_deals od
      ON od.kind = s.kind AND od.stage = s.stage AND od.objection_id = s.objection_id
    UNION
    SELECT s.position, d.kind, d.account_id, l.account_id
    FROM top_groups s
    CROSS JOIN LATERAL (
        SELECT d.kind, d.lead_id, d.account_id FROM open_deal_rows d
        WHERE d.kind = s.kind AND d.stage = s.stage
          AND NOT EXISTS (SELECT 1 FROM lead_objections lo WHERE lo.lead_id = d.lead_id)
    ) d
    LEFT JOIN leads_lead l ON l.id = d.lead_id
    WHERE s.objection_id IS NULL
),
shown AS (
    -- The industries of a group's deals: an opportunity's account's, else its lead's
    -- account's; a handoff's lead's account's.
    SELECT s.*, i.industries
    FROM top_groups s
    JOIN (
        SELECT sa.position,
               ARRAY_AGG(DISTINCT CASE WHEN sa.kind = 'opportunity'
                                       THEN COALESCE(NULLIF(oa.industry, ''), la.industry, '')
                                       ELSE COALESCE(la.industry, '') END) AS industries
        FROM shown_accounts sa
        LEFT JOIN leads_account oa ON oa.id = sa.account_id
        LEFT JOIN leads_account la ON la.id = sa.lead_account_id
        GROUP BY sa.position
    ) i ON i.position = s.position
),
"""

_KEPT_SHOWN_SQL = """shown AS (
    -- The industries of a group's deals, kept with their counts.
    SELECT s.*, i.industries
    FROM top_groups s
    JOIN (
        SELECT s.position, ARRAY_AGG(DISTINCT d.industry) AS industries
        FROM top_groups s
        JOIN open_deal_sets d
          ON d.kind = s.kind AND d.stage = s.stage
         AND COALESCE(d.objection_id, 0) = COALESCE(s.objection_id, 0)
        GROUP BY s.position
    ) i ON i.position = s.position
),
"""

# The shown groups matched to the similar won deals and their assets, from either.
_MATCHING_SQL = """won AS MATERIALIZED (
    SELECT o.id AS deal_id, o.lead_id, o.account_id, o.created_at, o.closed_at
    FROM leads_opportunity o
    WHERE o.status = 'won' AND o.closed_at <= %(now)s AND o.lead_id IS NOT NULL
),
won_heard AS MATERIALIZED (
    -- The shown objections each won deal's lead heard, read once for every group: probed
    -- per group and won deal, they cost a lookup for each pair (~75k at a million leads).
    SELECT DISTINCT w.deal_id, wo.objection_id
    FROM won w
    JOIN lead_objections wo ON wo.lead_id = w.lead_id
    WHERE wo.objection_id IN (SELECT objection_id FROM shown WHERE objection_id IS NOT NULL)
),
won_industries AS MATERIALIZED (
    -- The industry of each won deal a shown group can match, its account looked up by its key
    -- (joined, the planner hashed every account): every won deal when a group without an
    -- objection is shown (any won deal of its industries is similar), else only those whose
    -- lead heard a shown objection (~3k of ~12k deals at a million leads).
    SELECT w.deal_id, w.lead_id, w.created_at, w.closed_at,
           COALESCE((SELECT NULLIF(oa.industry, '') FROM leads_account oa
                     WHERE oa.id = w.account_id),
                    (SELECT la.industry FROM leads_lead l JOIN leads_account la
                     ON la.id = l.account_id WHERE l.id = w.lead_id),
                    '') AS industry
    FROM won w
    WHERE EXISTS (SELECT 1 FROM shown WHERE objection_id IS NULL)
       OR w.deal_id IN (SELECT deal_id FROM won_heard)
),
alike AS (
    -- Each shown group's similar won deals: an industry of the group's deals, and the
    -- group's objection heard (any won deal of those industries for "no objection").
    SELECT s.position, s.kind, s.stage, w.deal_id, w.lead_id, w.created_at, w.closed_at
    FROM shown s
    JOIN won_industries w ON w.industry = ANY(s.industries)
    WHERE s.objection_id IS NULL
    UNION ALL
    SELECT s.position, s.kind, s.stage, w.deal_id, w.lead_id, w.created_at, w.closed_at
    FROM shown s
    JOIN won_heard wh ON wh.objection_id = s.objection_id
    JOIN won_industries w ON w.deal_id = wh.deal_id AND w.industry = ANY(s.industries)
),
uses AS MATERIALIZED (
    -- Assets sales shared with a similar won deal's lead (the share table kept with the
    -- touches' links), and assets the lead engaged with: the content-linked events
    -- (leads_contentevent, retired ones included), each lead's through their lead indexes
    -- (a lateral part: joined, the planner read every content event), not through every
    -- month partition of the event table. Materialized: inlined, the planner joined each
    -- lead's uses to every similar deal again.
    SELECT u.lead_id, u.asset_id, u.used_at
    FROM (SELECT DISTINCT lead_id FROM alike) a
    CROSS JOIN LATERAL (
        SELECT s.lead_id, s.content_asset_id AS asset_id, s.occurred_at AS used_at
        FROM leads_contentshare s WHERE s.lead_id = a.lead_id
        UNION ALL
        SELECT e.lead_id, e.content_asset_id, e.occurred_at
        FROM leads_contentevent e WHERE e.lead_id = a.lead_id
    ) u
),
helped AS (
    -- Used at the group's stage: during the opportunity (created → closed) for an
    -- opportunity group; before it, while the lead's latest handoff was at the group's
    -- stage, for a handoff group.
    SELECT m.position, u.asset_id, COUNT(DISTINCT m.deal_id) AS won_deals
    FROM alike m
    JOIN uses u ON u.lead_id = m.lead_id AND u.used_at <= m.closed_at
    WHERE CASE
        WHEN m.kind = 'opportunity' THEN u.used_at >= m.created_at
        ELSE u.used_at < m.created_at
             AND (SELECT h.stage FROM leads_handoff h
                  WHERE h.lead_id = m.lead_id AND h.assigned_at <= u.used_at
                  ORDER BY h.assigned_at DESC, h.id DESC LIMIT 1) = m.stage
    END
    GROUP BY m.position, u.asset_id
),
ranked AS (
    SELECT hp.position, hp.asset_id, hp.won_deals, c.title, c.asset_type, c.funnel_stage,
           ROW_NUMBER() OVER (
               PARTITION BY hp.position ORDER BY hp.won_deals DESC, c.title, c.id
           ) AS asset_rank
    FROM helped hp
    JOIN leads_contentasset c ON c.id = hp.asset_id
),
similar_counts AS (
    SELECT position, COUNT(DISTINCT deal_id) AS similar_won FROM alike GROUP BY position
),
requests AS (
    SELECT s.position, COUNT(r.id) AS open_requests
    FROM shown s
    JOIN metrics_contentrequest r
      ON s.kind = 'handoff' AND r.stage = s.stage
     AND r.objection_id IS NOT DISTINCT FROM s.objection_id
    WHERE r.status IN ('open', 'in_progress') AND r.created_at <= %(now)s
    GROUP BY s.position
)
SELECT s.position, s.group_count, s.kind, s.stage, t.key, t.label, s.deals, s.amount,
       COALESCE(sc.similar_won, 0), COALESCE(rq.open_requests, 0),
       r.asset_id, r.title, r.asset_type, r.funnel_stage, r.won_deals,
       (SELECT n FROM open_handoffs)
FROM shown s
LEFT JOIN leads_objectiontag t ON t.id = s.objection_id
LEFT JOIN similar_counts sc ON sc.position = s.position
LEFT JOIN requests rq ON rq.position = s.position
LEFT JOIN ranked r ON r.position = s.position AND r.asset_rank <= %(assets)s
ORDER BY s.position, r.asset_rank
"""


def _open_deal_content_sql(*, kept: bool) -> str:
    if not kept:
        return _RAW_OPEN_GROUPS_SQL + _TOP_GROUPS_SQL + _RAW_SHOWN_SQL + _MATCHING_SQL
    fresh_rows = open_deals.deal_rows_sql("IN (SELECT lead_id FROM dirty)", cut="%(now)s")
    return (
        _KEPT_OPEN_GROUPS_SQL.replace("{fresh_leads}", open_deals.FRESH_LEADS_SQL).replace(
            "{fresh_rows}", fresh_rows
        )
        + _TOP_GROUPS_SQL
        + _KEPT_SHOWN_SQL
        + _MATCHING_SQL
    )


def open_deal_content(
    now: datetime,
    *,
    open_stages: Sequence[str],
    top: int = 6,
    assets: int = 3,
    kept: bool | None = None,
) -> OpenDealContent:
    """Open opportunities and the handoffs sales is still working (pending, or accepted with
    the lead still in one of ``open_stages`` and no opportunity yet), grouped by stage and
    objection heard, the ``top`` biggest groups (those with an objection first); for each, the
    ``assets`` content assets used by the most similar won deals (same industry, same
    objection) at the same stage.

    One SQL statement (grouping, matching and ranking in the database); the loop below only
    nests its at most ``top`` × ``assets`` rows. The data keeps no history of an opportunity's
    own stage, so for an opportunity group "the same stage" is the won deal's opportunity as a
    whole (use from its creation to its close); for a handoff group it is the won deal's lead
    while its latest handoff was at that stage, before the opportunity.

    The open deals come from the rows kept per lead (``metrics.open_deals``) when they are
    built and few leads need computing afresh, else from the raw facts; ``kept`` forces either
    (the tests hold them equal).
    """
    # The replica in a stale-reads scope (the meeting page), as the ORM's reads.
    with connections[router.db_for_read(Opportunity)].cursor() as cursor:
        if kept is None:
            kept = open_deals.open_deals_answer(cursor, now)
        cursor.execute(
            _open_deal_content_sql(kept=kept),
            {"now": now, "open_stages": list(open_stages), "top": top, "assets": assets},
        )
        rows = cursor.fetchall()
    groups: dict[int, dict] = {}
    group_count = open_handoffs = 0  # no row: no open deal
    for (
        position,
        count,
        kind,
        stage,
        objection_key,
        objection_label,
        deals,
        amount,
        similar_won,
        open_requests,
        asset_id,
        title,
        asset_type,
        funnel_stage,
        won_deals,
        handoffs,
    ) in rows:
        group_count, open_handoffs = count, handoffs
        group = groups.setdefault(
            position,
            {
                "kind": kind,
                "stage": stage,
                "objection_key": objection_key,
                "objection_label": objection_label,
                "deals": deals,
                "amount": amount,
                "similar_won": similar_won,
                "open_requests": open_requests,
                "assets": [],
            },
        )
        if asset_id is not None:
            group["assets"].append(
                HelpfulAsset(asset_id, title, asset_type, funnel_stage, won_deals)
            )
    return OpenDealContent(
        groups=tuple(
            OpenDealGroup(**{**group, "assets": tuple(group["assets"])})
            for group in groups.values()
        ),
        group_count=group_count,
        open_handoffs=open_handoffs,
    )
