"""Set-based scoring of a range of leads: the paths a full recompute and the decay run take.

Each function works on leads with ``lo <= id <= hi`` inside the caller's transaction and gives
exactly what ``scoring.engine.score_lead`` gives lead by lead (a property-based test holds them
to it):

* ``reread_sums`` — re-aggregates events into the per-kind decayed sums (half-life or caps
  changed, or a lead never scored): one ``UPDATE … FROM (SELECT … GROUP BY)``.
* ``refit_in_sql`` — fit points, exclusion and tier after an ICP change (or changed lead or
  account facts): the ICP's criteria compiled to SQL, one ``UPDATE … FROM`` per range; it also
  copies the lead's e-mail domain onto the state row.
* ``rescore_from_sums`` — engagement, total and grade from the stored sums: a weight change, a
  new scoring day (decay) or the last step of the other two. It reads no event and no lead row:
  a publish of new weights rewrites the narrow state rows and nothing else.
"""

from collections.abc import Iterable, Sequence

from django.db import connection

from leads.choices import EventKind
from leads.models import Lead
from scoring import engine
from scoring.models import LeadScoreState, sum_field_name

LEAD_TABLE = Lead._meta.db_table
STATE_TABLE = LeadScoreState._meta.db_table
EVENT_TABLE = "leads_engagementevent"
ACCOUNT_TABLE = "leads_account"


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _least(*terms: str) -> str:
    return f"{'LEAST' if _is_postgres() else 'MIN'}({', '.join(terms)})"


def _greatest(*terms: str) -> str:
    return f"{'GREATEST' if _is_postgres() else 'MAX'}({', '.join(terms)})"


def utc_day_sql(column: str) -> str:
    """SQL for the UTC day number (days since 1970-01-01) of an instant column, as
    ``engine.day_number`` computes it in Python."""
    if _is_postgres():
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column}) / 86400) AS INTEGER)"
    return f"CAST(julianday({column}) - 2440587.5 AS INTEGER)"


def _email_domain(column: str) -> str:
    if _is_postgres():
        return f"SPLIT_PART({column}, '@', 2)"
    at = f"INSTR({column}, '@')"
    return f"CASE WHEN {at} > 0 THEN SUBSTR({column}, {at} + 1) ELSE '' END"


# A float parameter, typed so PostgreSQL computes in float8 (as Python does), never numeric.
FLOAT = "CAST(%s AS DOUBLE PRECISION)"


def _quantized(expression: str) -> str:
    return f"(FLOOR(({expression}) * 100 + 0.5) / 100.0)"


def _two(power_of: str, half_life: float) -> tuple[str, list]:
    """2^(power_of / H), as the engine's ``decay_factor``."""
    return (
        f"POWER(CAST(2 AS DOUBLE PRECISION), CAST(({power_of}) AS DOUBLE PRECISION) / {FLOAT})",
        [half_life],
    )


def _in_list(values: Iterable[str]) -> tuple[str, list]:
    values = sorted(values)
    if not values:
        return "(NULL)", []
    return "(" + ", ".join(["%s"] * len(values)) + ")", values


def only_ids(column: str, ids: Sequence[int] | None) -> tuple[str, list]:
    """``AND column IN ids`` for a set of leads inside a range (None: the whole range). The
    incremental path rescores its dirty leads this way: the range still bounds the index scan."""
    if ids is None:
        return "", []
    if _is_postgres():
        return f"AND {column} = ANY(%s)", [list(ids)]
    return f"AND {column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def ensure_states(lo: int, hi: int) -> int:
    """Create the missing score states of the range (new leads start unscored)."""
    with connection.cursor() as cursor:
        # Every state row has its lead, so equal counts mean none is missing: two index-only
        # counts cost a fraction of the anti-join that finds the missing ones (every publish
        # asks this of every range, and after the first full rescore the answer is "none").
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {LEAD_TABLE} WHERE id BETWEEN %s AND %s) "
            f"- (SELECT COUNT(*) FROM {STATE_TABLE} WHERE lead_id BETWEEN %s AND %s)",
            [lo, hi, lo, hi],
        )
        if cursor.fetchone()[0] == 0:
            return 0
    sql = f"""
        INSERT INTO {STATE_TABLE}
            (lead_id, email_domain, epoch_day, as_of_day, pending_seq, scored_seq)
        SELECT l.id, {_email_domain("l.email")}, 0, 0, 0, 0 FROM {LEAD_TABLE} l
        WHERE l.id BETWEEN %s AND %s
          AND NOT EXISTS (SELECT 1 FROM {STATE_TABLE} s WHERE s.lead_id = l.id)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [lo, hi])
        return cursor.rowcount


def reread_sums(
    lo: int,
    hi: int,
    *,
    spec: engine.ScoringSpec,
    model_id: int,
    as_of_day: int,
    keep_sums_of: list[int] | None = None,
    ids: Sequence[int] | None = None,
) -> None:
    """Recompute the sums from events; with ``keep_sums_of``, only for rows whose sums were made
    under models not listed (another half-life or caps); with ``ids``, only for those leads.
    Reread rows need a rescore after."""
    kinds = sorted(spec.rules)
    params: list = []
    columns = []
    for kind in kinds:
        rule = spec.rules[kind]
        power, power_params = _two("d.day - %s", spec.half_life_days)
        columns.append(
            f"SUM(CASE WHEN d.kind = %s THEN {_least('d.n', '%s')} * {power} ELSE 0 END) "
            f"AS {sum_field_name(kind)}"
        )
        params += [kind, rule.daily_cap, as_of_day, *power_params]
    assignments = ", ".join(
        f"{sum_field_name(kind)} = COALESCE(agg.{sum_field_name(kind)}, 0)" for kind in kinds
    )
    # Kinds without a rule in this model count for nothing: their sums are zeroed.
    zeroed = [f"{sum_field_name(kind)} = 0" for kind in EventKind.values if kind not in spec.rules]
    stale = ""
    stale_params: list = []
    if keep_sums_of:
        kept = ", ".join(["%s"] * len(keep_sums_of))
        stale = f"AND (s.sums_model_id IS NULL OR s.sums_model_id NOT IN ({kept}))"
        stale_params = list(keep_sums_of)
    event_ids, event_id_params = only_ids("e.lead_id", ids)
    state_ids, state_id_params = only_ids("s.lead_id", ids)
    sql = f"""
        UPDATE {STATE_TABLE} SET {", ".join([assignments, *zeroed])},
            epoch_day = %s, sums_model_id = %s, scoring_model_id = NULL
        FROM (
            SELECT s.lead_id, {", ".join(columns)}
            FROM {STATE_TABLE} s
            LEFT JOIN (
                SELECT e.lead_id, e.kind, {utc_day_sql("e.occurred_at")} AS day, COUNT(*) AS n
                FROM {EVENT_TABLE} e
                WHERE e.lead_id BETWEEN %s AND %s {event_ids}
                GROUP BY e.lead_id, e.kind, {utc_day_sql("e.occurred_at")}
            ) d ON d.lead_id = s.lead_id
            WHERE s.lead_id BETWEEN %s AND %s {stale} {state_ids}
            GROUP BY s.lead_id
        ) agg
        WHERE {STATE_TABLE}.lead_id = agg.lead_id
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                as_of_day,
                model_id,
                *params,
                lo,
                hi,
                *event_id_params,
                lo,
                hi,
                *stale_params,
                *state_id_params,
            ],
        )


def _engagement_sql(spec: engine.ScoringSpec, as_of_day: int) -> tuple[str, list]:
    """SQL for a state row ``s``: the engine's engagement_from_sums (the e-mail adjustment from
    the domain the row keeps)."""
    params: list = []
    kinds = sorted(spec.rules)
    weighted = " + ".join(f"{FLOAT} * s.{sum_field_name(kind)}" for kind in kinds) or "0"
    params += [spec.rules[kind].weight for kind in kinds]
    power, power_params = _two("s.epoch_day - %s", spec.half_life_days)
    params += [as_of_day, *power_params]
    personal, personal_params = _in_list(engine.PERSONAL_EMAIL_DOMAINS)
    competitors, competitor_params = _in_list(spec.competitor_domains)
    domain = "s.email_domain"
    adjustment = (
        f"(CASE WHEN {domain} IN {personal} THEN {FLOAT} ELSE 0 END"
        f" + CASE WHEN {domain} IN {competitors} THEN {FLOAT} ELSE 0 END)"
    )
    params += [
        *personal_params,
        spec.personal_email_penalty,
        *competitor_params,
        spec.competitor_penalty,
    ]
    clamped = _least(_greatest(f"({weighted}) * {power} + {adjustment}", FLOAT), FLOAT)
    params += [spec.floor, spec.cap]
    return _quantized(clamped), params


def _band_sql(engagement: str, spec: engine.ScoringSpec) -> tuple[str, list]:
    return (
        f"CASE WHEN {engagement} >= {FLOAT} THEN '1' WHEN {engagement} >= {FLOAT} THEN '2' "
        f"WHEN {engagement} >= {FLOAT} THEN '3' ELSE '4' END",
        [spec.band_1, spec.band_2, spec.band_3],
    )


def rescore_from_sums(
    lo: int,
    hi: int,
    *,
    spec: engine.ScoringSpec,
    model_id: int,
    as_of_day: int,
    only_stale: bool = False,
    ids: Sequence[int] | None = None,
) -> None:
    """Engagement, total and grade from the sums; with ``only_stale``, only for rows scored under
    another model or day (or whose sums were just reread); with ``ids``, only those leads."""
    engagement, params = _engagement_sql(spec, as_of_day)
    stale = ""
    stale_params: list = []
    if only_stale:
        stale = "AND (s.scoring_model_id IS NULL OR s.scoring_model_id <> %s OR s.as_of_day <> %s)"
        stale_params = [model_id, as_of_day]
    state_ids, state_id_params = only_ids("s.lead_id", ids)
    band, band_params = _band_sql("x.engagement", spec)
    total = _quantized(_greatest(f"{STATE_TABLE}.fit_points + x.engagement", "0"))
    # One statement on the narrow state table alone: no lead row is read.
    sql = f"""
        UPDATE {STATE_TABLE} SET engagement = x.engagement, total = {total},
            grade = {STATE_TABLE}.tier || {band}, scoring_model_id = %s, as_of_day = %s
        FROM (
            SELECT s.lead_id, {engagement} AS engagement
            FROM {STATE_TABLE} s
            WHERE s.lead_id BETWEEN %s AND %s {stale} {state_ids}
        ) x
        WHERE {STATE_TABLE}.lead_id = x.lead_id
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                *band_params,
                model_id,
                as_of_day,
                *params,
                lo,
                hi,
                *stale_params,
                *state_id_params,
            ],
        )


def _has_stale_sums(lo: int, hi: int, keep_sums_of: list[int]) -> bool:
    """Cheap check first: re-aggregating a range's events costs far more than asking."""
    if not keep_sums_of:
        return True
    kept = ", ".join(["%s"] * len(keep_sums_of))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {STATE_TABLE} WHERE lead_id BETWEEN %s AND %s "
            f"AND (sums_model_id IS NULL OR sums_model_id NOT IN ({kept})) LIMIT 1",
            [lo, hi, *keep_sums_of],
        )
        return cursor.fetchone() is not None


def _has_stale_fit(lo: int, hi: int, icp_version_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {STATE_TABLE} WHERE lead_id BETWEEN %s AND %s "
            "AND (icp_version_id IS NULL OR icp_version_id <> %s) LIMIT 1",
            [lo, hi, icp_version_id],
        )
        return cursor.fetchone() is not None


def bring_up_to_date(
    lo: int,
    hi: int,
    *,
    icp: engine.IcpSpec,
    icp_version_id: int,
    spec: engine.ScoringSpec,
    model_id: int,
    keep_sums_of: list[int],
    as_of_day: int,
) -> None:
    """Make every lead of the range current with the ICP and model in force and the day: rows
    already current are skipped, so re-running a range is cheap and changes nothing."""
    ensure_states(lo, hi)
    reread_sums(
        lo, hi, spec=spec, model_id=model_id, as_of_day=as_of_day, keep_sums_of=keep_sums_of
    )
    if _has_stale_fit(lo, hi, icp_version_id):
        refit_in_sql(lo, hi, icp=icp, icp_version_id=icp_version_id, spec=spec)
    rescore_from_sums(lo, hi, spec=spec, model_id=model_id, as_of_day=as_of_day, only_stale=True)


def rescore_exactly(
    ids: Sequence[int],
    *,
    icp: engine.IcpSpec,
    icp_version_id: int,
    spec: engine.ScoringSpec,
    model_id: int,
    as_of_day: int,
) -> None:
    """The incremental path: rescore exactly these leads from their events and facts (new
    events, backdated ones, changed lead or account fields) in three statements, whatever state
    their rows are in."""
    if not ids:
        return
    lo, hi = min(ids), max(ids)
    reread_sums(lo, hi, spec=spec, model_id=model_id, as_of_day=as_of_day, ids=ids)
    refit_in_sql(lo, hi, icp=icp, icp_version_id=icp_version_id, spec=spec, ids=ids)
    rescore_from_sums(lo, hi, spec=spec, model_id=model_id, as_of_day=as_of_day, ids=ids)


# --- Fit in SQL ------------------------------------------------------------------------------
# The ICP's criteria compiled to SQL, so a publish refits a million leads without a Python loop.
# Text is compared lower-cased with Python's own str.lower (registered on SQLite, see
# scoring.apps; PostgreSQL's lower() agrees for the scripts ICP values use).

EMPTY = "''"
EFFECTIVE_COUNTRY = (
    "CASE WHEN a.country IS NOT NULL AND a.country <> '' THEN a.country ELSE l.country END"
)


def _lower(expression: str) -> str:
    return f"{'LOWER' if _is_postgres() else 'PY_LOWER'}({expression})"


def _criterion_sql(criterion: engine.Criterion) -> tuple[str, list]:
    attribute = criterion.attribute
    if attribute in engine.RANGE_ATTRIBUTES:
        column = f"a.{attribute}"
        parts, params = [f"{column} IS NOT NULL"], []
        if criterion.min_value is not None:
            parts.append(f"{column} >= {FLOAT}")
            params.append(criterion.min_value)
        if criterion.max_value is not None:
            parts.append(f"{column} <= {FLOAT}")
            params.append(criterion.max_value)
        return "(" + " AND ".join(parts) + ")", params
    values_sql, values = _in_list(criterion.values)
    if attribute in ("technologies", "signals"):
        if _is_postgres():
            # Accounts store these lists lower-cased (Account.save), so "any of" is one
            # jsonb operator per row instead of unnesting the array.
            array = ", ".join(["%s"] * len(values))
            return f"(COALESCE(a.{attribute}, '[]'::jsonb) ?| ARRAY[{array}]::text[])", values
        elements = f"json_each(COALESCE(a.{attribute}, '[]')) AS t"
        where = f"{_lower('t.value')} IN {values_sql}"
        return f"EXISTS (SELECT 1 FROM {elements} WHERE {where})", values
    if attribute == "title":
        find = "STRPOS" if _is_postgres() else "INSTR"
        title = _lower("COALESCE(l.title, '')")
        return "(" + " OR ".join(f"{find}({title}, %s) > 0" for _ in values) + ")", values
    column = {
        "industry": "a.industry",
        "region": "a.region",
        "seniority": "l.seniority",
        "country": EFFECTIVE_COUNTRY,
    }[attribute]
    return f"{_lower(f'COALESCE({column}, {EMPTY})')} IN {values_sql}", values


def _fit_sql(icp: engine.IcpSpec) -> tuple[str, list, str, list]:
    """(points expression, params, excluded expression, params) over leads ``l``, accounts ``a``."""
    points, points_params, exclusions, exclusion_params = [], [], [], []
    for criterion in icp.criteria:
        condition, params = _criterion_sql(criterion)
        if criterion.is_exclusion:
            exclusions.append(condition)
            exclusion_params += params
        else:
            points.append(f"CASE WHEN {condition} THEN %s ELSE 0 END")
            points_params += [*params, criterion.points]
    return (
        " + ".join(points) or "0",
        points_params,
        " OR ".join(exclusions) or "1 = 0",
        exclusion_params,
    )


def refit_in_sql(
    lo: int,
    hi: int,
    *,
    icp: engine.IcpSpec,
    icp_version_id: int,
    spec: engine.ScoringSpec,
    ids: Sequence[int] | None = None,
) -> None:
    """Refit the range's stale leads in two statements: the score states, then the tiers mirrored
    onto leads whose tier changed. With ``ids``, refit exactly those leads, stale or not (their
    lead or account facts may have changed)."""
    points, points_params, excluded, excluded_params = _fit_sql(icp)
    tier = (
        "CASE WHEN x.excluded THEN 'D' WHEN x.points >= %s THEN 'A' WHEN x.points >= %s THEN 'B' "
        "WHEN x.points >= %s THEN 'C' ELSE 'D' END"
    )
    tier_params = [icp.tier_a_min_points, icp.tier_b_min_points, icp.tier_c_min_points]
    band, band_params = _band_sql(f"{STATE_TABLE}.engagement", spec)
    total = _quantized(_greatest(f"x.points + {STATE_TABLE}.engagement", "0"))
    if ids is None:
        chosen, chosen_params = (
            "AND (s.icp_version_id IS NULL OR s.icp_version_id <> %s)",
            [icp_version_id],
        )
    else:
        chosen, chosen_params = only_ids("s.lead_id", ids)
    lead_ids, lead_id_params = only_ids(f"{LEAD_TABLE}.id", ids)
    true = "TRUE" if _is_postgres() else "1"
    false = "FALSE" if _is_postgres() else "0"
    sql = f"""
        UPDATE {STATE_TABLE} SET fit_points = x.points, fit_excluded = x.excluded,
            tier = {tier}, total = {total}, grade = {tier} || {band}, icp_version_id = %s,
            email_domain = x.email_domain
        FROM (
            SELECT s.lead_id, {points} AS points,
                   CASE WHEN {excluded} THEN {true} ELSE {false} END AS excluded,
                   {_email_domain("l.email")} AS email_domain
            FROM {STATE_TABLE} s
            JOIN {LEAD_TABLE} l ON l.id = s.lead_id AND l.id BETWEEN %s AND %s
            LEFT JOIN {ACCOUNT_TABLE} a ON a.id = l.account_id
            WHERE s.lead_id BETWEEN %s AND %s {chosen}
        ) x
        WHERE {STATE_TABLE}.lead_id = x.lead_id
    """
    params = [
        *tier_params,
        *tier_params,
        *band_params,
        icp_version_id,
        *points_params,
        *excluded_params,
        lo,
        hi,
        lo,
        hi,
        *chosen_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute(
            f"""
            UPDATE {LEAD_TABLE} SET tier = s.tier FROM {STATE_TABLE} s
            WHERE s.lead_id = {LEAD_TABLE}.id AND {LEAD_TABLE}.id BETWEEN %s AND %s {lead_ids}
              AND {LEAD_TABLE}.tier <> s.tier
            """,
            [lo, hi, *lead_id_params],
        )
