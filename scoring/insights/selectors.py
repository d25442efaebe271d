"""Win rates of closed deals per attribute the ICP can use, aggregated in SQL (one GROUP BY per
attribute; technologies, a JSON list, unnested on PostgreSQL and with json_each on SQLite).

A closed deal is a won or lost opportunity linked to a lead; the lead's account gives the
firmographics. A deal of an account using three technologies counts in each of the three."""

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, CharField, Count, F, Max, Q, Value, When
from django.db.models.functions import Coalesce, Lower

from leads.choices import CriterionAttribute, DefinitionStatus, OpportunityStatus, Region, Seniority
from leads.models import IcpVersion, Opportunity
from leads.selectors import icp_in_force
from scoring.insights import maths
from scoring.selectors import icp_spec

# (attribute, heading): what the page shows, in this order. "source" is evidence only: the ICP
# cannot score a lead's source.
ATTRIBUTES = (
    ("industry", "Industry"),
    ("employees", "Employees"),
    ("annual_revenue", "Annual revenue"),
    ("country", "Country"),
    ("region", "Region"),
    ("technologies", "Technologies"),
    ("seniority", "Title seniority"),
    ("source", "Lead source"),
)
ICP_ATTRIBUTES = frozenset(CriterionAttribute.values)


def min_closed_deals() -> int:
    return settings.INSIGHTS_MIN_CLOSED_DEALS


def closed_deals():
    return Opportunity.objects.filter(
        status__in=[OpportunityStatus.WON, OpportunityStatus.LOST], lead__isnull=False
    )


def _band_case(field: str, bands) -> Case:
    whens = []
    for band in bands:
        condition = Q(**{f"{field}__isnull": False})
        if band.low is not None:
            condition &= Q(**{f"{field}__gte": band.low})
        if band.high is not None:
            condition &= Q(**{f"{field}__lte": band.high})
        whens.append(When(condition, then=Value(band.label)))
    return Case(*whens, default=Value(""), output_field=CharField())


def _expressions() -> dict:
    account = "lead__account__"
    return {
        "industry": Lower(Coalesce(F(f"{account}industry"), Value(""))),
        "employees": _band_case(f"{account}employees", maths.EMPLOYEE_BANDS),
        "annual_revenue": _band_case(f"{account}annual_revenue", maths.REVENUE_BANDS),
        # The account's country when it has one, else the lead's (as the scoring engine).
        "country": Lower(
            Case(
                When(
                    Q(**{f"{account}country__isnull": False}) & ~Q(**{f"{account}country": ""}),
                    then=F(f"{account}country"),
                ),
                default=F("lead__country"),
                output_field=CharField(),
            )
        ),
        "region": Lower(Coalesce(F(f"{account}region"), Value(""))),
        "seniority": F("lead__seniority"),
        "source": Coalesce(F("lead__source__name"), Value("")),
    }


def _grouped(expression) -> list[tuple[str, int, int]]:
    return [
        (key or "", closed, won)
        for key, closed, won in closed_deals()
        .annotate(key=expression)
        .values("key")
        .annotate(closed=Count("pk"), won=Count("pk", filter=Q(status=OpportunityStatus.WON)))
        .order_by("key")
        .values_list("key", "closed", "won")
    ]


def _technologies() -> list[tuple[str, int, int]]:
    if connection.vendor == "postgresql":
        elements = "jsonb_array_elements_text(COALESCE(a.technologies, '[]'::jsonb)) AS t(tech)"
        tech = "t.tech"
    else:
        elements = "json_each(COALESCE(a.technologies, '[]')) AS t"
        tech = "t.value"
    sql = f"""
        SELECT {tech}, COUNT(*), SUM(CASE WHEN o.status = %s THEN 1 ELSE 0 END)
        FROM leads_opportunity o
        JOIN leads_lead l ON l.id = o.lead_id
        JOIN leads_account a ON a.id = l.account_id
        CROSS JOIN {elements}
        WHERE o.status IN (%s, %s)
        GROUP BY {tech}
        ORDER BY {tech}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [OpportunityStatus.WON, OpportunityStatus.WON, OpportunityStatus.LOST])
        return [(str(key).lower(), closed, int(won or 0)) for key, closed, won in cursor.fetchall()]


def _label(attribute: str, key: str) -> str:
    if not key:
        return "(unknown)"
    if attribute == "region":
        return dict((value.lower(), label) for value, label in Region.choices).get(key, key)
    if attribute == "seniority":
        return dict(Seniority.choices).get(key, key)
    if attribute == "country":
        return key.upper()
    return key


def working_icp() -> IcpVersion | None:
    """The ICP suggestions are weighed against: the newest draft, else the one in force."""
    draft = IcpVersion.objects.filter(status=DefinitionStatus.DRAFT).order_by("-number").first()
    return draft or icp_in_force()


@dataclass(frozen=True)
class Insights:
    closed: int
    won: int
    overall_rate: float | None
    sections: list[tuple[str, str, list[maths.Segment]]]  # attribute, heading, segments
    icp: IcpVersion | None
    min_closed: int

    @property
    def segments(self) -> list[maths.Segment]:
        return [segment for _, _, segments in self.sections for segment in segments]


def _segment_counts(totals: dict) -> dict[str, list[tuple[str, int, int]]]:
    """(key, closed, won) per segment of every attribute: one GROUP BY each over every closed
    deal, which takes seconds at a million leads, so the result is cached until a deal closes
    (the fingerprint changes) or ``INSIGHTS_CACHE_SECONDS`` pass (account facts may change)."""
    newest = totals["newest"].isoformat() if totals["newest"] else "-"
    key = f"insights:segments:{totals['closed']}:{totals['won']}:{totals['last_id']}:{newest}"
    counts = cache.get(key)
    if counts is None:
        expressions = _expressions()
        counts = {
            attribute: _technologies()
            if attribute == "technologies"
            else _grouped(expressions[attribute])
            for attribute, _ in ATTRIBUTES
        }
        cache.set(key, counts, settings.INSIGHTS_CACHE_SECONDS)
    return counts


def icp_insights() -> Insights:
    totals = closed_deals().aggregate(
        closed=Count("pk"),
        won=Count("pk", filter=Q(status=OpportunityStatus.WON)),
        last_id=Max("pk"),
        newest=Max("closed_at"),
    )
    overall = totals["won"] / totals["closed"] if totals["closed"] else None
    icp = working_icp()
    criteria = list(icp_spec(icp).criteria) if icp is not None else []
    counts = _segment_counts(totals)
    sections = []
    for attribute, heading in ATTRIBUTES:
        rows = counts[attribute]
        segments = []
        for key, closed, won in rows:
            points, names, excluded = (None, (), False)
            if attribute in ICP_ATTRIBUTES:
                points, names, excluded = maths.icp_weight(criteria, attribute, key)
            segments.append(
                maths.Segment(
                    attribute=attribute,
                    key=key,
                    label=_label(attribute, key),
                    closed=closed,
                    won=won,
                    points=points,
                    criteria=names,
                    excluded=excluded,
                )
            )
        segments.sort(key=lambda s: (-s.closed, s.label))
        sections.append((attribute, heading, segments))
    return Insights(
        closed=totals["closed"],
        won=totals["won"],
        overall_rate=overall,
        sections=sections,
        icp=icp,
        min_closed=min_closed_deals(),
    )


def insight_suggestions(insights: Insights) -> list[maths.Suggestion]:
    return maths.suggestions(
        insights.segments, overall_rate=insights.overall_rate, min_closed=insights.min_closed
    )
