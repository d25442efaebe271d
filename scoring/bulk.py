"""Set-based scoring of a range of leads: the paths a full recompute and the decay run take.

Each function works on leads with ``lo <= id <= hi`` inside the caller's transaction and gives
exactly what ``scoring.engine.score_lead`` gives lead by lead (a property-based test holds them
to it):

* ``reread_sums`` — re-aggregates events into the per-kind decayed sums (half-life or caps
  changed, or a lead never scored): one ``UPDATE … FROM (SELECT … GROUP BY)``.
* ``refit`` — fit points, exclusion and tier after an ICP change. Criteria are matched by the
  engine itself, once per distinct account and once per distinct (seniority, title, country);
  the results are joined back in one ``UPDATE`` per batch, so matching text behaves exactly as
  in Python (no database collation or ``lower()`` differences).
* ``rescore_from_sums`` — engagement, total and grade from the stored sums: a weight change, a
  new scoring day (decay) or the last step of the other two. It reads no event.
"""

import json
from collections.abc import Iterable

from django.db import connection

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


def _day_of(column: str) -> str:
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


def ensure_states(lo: int, hi: int) -> int:
    """Create the missing score states of the range (new leads start unscored)."""
    sql = f"""
        INSERT INTO {STATE_TABLE}
            (lead_id, epoch_day, as_of_day, pending_seq, scored_seq)
        SELECT l.id, 0, 0, 0, 0 FROM {LEAD_TABLE} l
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
) -> None:
    """Recompute the sums from events; with ``keep_sums_of``, only for rows whose sums were made
    under models not listed (another half-life or caps). Reread rows need a rescore after."""
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
    zeroed = [f"{sum_field_name(kind)} = 0" for kind in engine_kinds() if kind not in spec.rules]
    stale = ""
    stale_params: list = []
    if keep_sums_of:
        kept = ", ".join(["%s"] * len(keep_sums_of))
        stale = f"AND (s.sums_model_id IS NULL OR s.sums_model_id NOT IN ({kept}))"
        stale_params = list(keep_sums_of)
    sql = f"""
        UPDATE {STATE_TABLE} SET {", ".join([assignments, *zeroed])},
            epoch_day = %s, sums_model_id = %s, scoring_model_id = NULL
        FROM (
            SELECT s.lead_id, {", ".join(columns)}
            FROM {STATE_TABLE} s
            LEFT JOIN (
                SELECT e.lead_id, e.kind, {_day_of("e.occurred_at")} AS day, COUNT(*) AS n
                FROM {EVENT_TABLE} e
                WHERE e.lead_id BETWEEN %s AND %s
                GROUP BY e.lead_id, e.kind, {_day_of("e.occurred_at")}
            ) d ON d.lead_id = s.lead_id
            WHERE s.lead_id BETWEEN %s AND %s {stale}
            GROUP BY s.lead_id
        ) agg
        WHERE {STATE_TABLE}.lead_id = agg.lead_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [as_of_day, model_id, *params, lo, hi, lo, hi, *stale_params])


def engine_kinds() -> list[str]:
    from leads.choices import EventKind

    return list(EventKind.values)


def _engagement_sql(spec: engine.ScoringSpec, as_of_day: int) -> tuple[str, list]:
    """SQL for a state row ``s`` joined to its lead ``l``: the engine's engagement_from_sums."""
    params: list = []
    kinds = sorted(spec.rules)
    weighted = " + ".join(f"{FLOAT} * s.{sum_field_name(kind)}" for kind in kinds) or "0"
    params += [spec.rules[kind].weight for kind in kinds]
    power, power_params = _two("s.epoch_day - %s", spec.half_life_days)
    params += [as_of_day, *power_params]
    personal, personal_params = _in_list(engine.PERSONAL_EMAIL_DOMAINS)
    competitors, competitor_params = _in_list(spec.competitor_domains)
    domain = _email_domain("l.email")
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
) -> None:
    """Engagement, total and grade from the sums; with ``only_stale``, only for rows scored under
    another model or day (or whose sums were just reread)."""
    engagement, params = _engagement_sql(spec, as_of_day)
    stale = ""
    stale_params: list = []
    if only_stale:
        stale = "AND (s.scoring_model_id IS NULL OR s.scoring_model_id <> %s OR s.as_of_day <> %s)"
        stale_params = [model_id, as_of_day]
    band, band_params = _band_sql("x.engagement", spec)
    total = _quantized(_greatest(f"{STATE_TABLE}.fit_points + x.engagement", "0"))
    # One statement, on the narrow state table only: the lead rows are only read (e-mail).
    sql = f"""
        UPDATE {STATE_TABLE} SET engagement = x.engagement, total = {total},
            grade = {STATE_TABLE}.tier || {band}, scoring_model_id = %s, as_of_day = %s
        FROM (
            SELECT s.lead_id, {engagement} AS engagement
            FROM {STATE_TABLE} s JOIN {LEAD_TABLE} l ON l.id = s.lead_id
            WHERE s.lead_id BETWEEN %s AND %s {stale}
        ) x
        WHERE {STATE_TABLE}.lead_id = x.lead_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*band_params, model_id, as_of_day, *params, lo, hi, *stale_params])


def _json_list(value) -> frozenset[str]:
    if isinstance(value, str):  # SQLite hands JSON back as text
        value = json.loads(value)
    return frozenset(value or ())


def _account_facts_from_row(row) -> engine.AccountFacts:
    industry, employees, revenue, region, technologies, signals = row
    return engine.AccountFacts(
        industry=industry or "",
        employees=employees,
        annual_revenue=float(revenue) if revenue is not None else None,
        region=region or "",
        technologies=_json_list(technologies),
        signals=_json_list(signals),
    )


class FitMemo:
    """Engine fit results per distinct account and per distinct person tuple, for one job."""

    def __init__(self, icp: engine.IcpSpec):
        self.icp = icp
        self.accounts: dict[int, tuple[int, bool]] = {}
        self.people: dict[tuple[str, str, str], tuple[int, bool]] = {}

    def account_part(
        self, account_id: int | None, facts: engine.AccountFacts | None
    ) -> tuple[int, bool]:
        if account_id is None:
            return 0, False
        part = self.accounts.get(account_id)
        if part is None:
            result = engine.partial_fit(
                self.icp,
                attributes=engine.ACCOUNT_ATTRIBUTES,
                person=engine.PersonFacts(),
                account=facts,
            )
            part = self.accounts[account_id] = (result.points, result.excluded)
        return part

    def person_part(self, key: tuple[str, str, str]) -> tuple[int, bool]:
        part = self.people.get(key)
        if part is None:
            person = engine.PersonFacts(seniority=key[0], title=key[1], country=key[2])
            result = engine.partial_fit(
                self.icp, attributes=engine.PERSON_ATTRIBUTES, person=person, account=None
            )
            part = self.people[key] = (result.points, result.excluded)
        return part


def refit(
    lo: int,
    hi: int,
    *,
    memo: FitMemo,
    icp_version_id: int,
    spec: engine.ScoringSpec,
    only_stale: bool = False,
) -> None:
    """Fit, exclusion and tier (and the total and grade that follow) for the range; with
    ``only_stale``, only for leads last fitted under another ICP version."""
    stale = ""
    stale_params: list = []
    if only_stale:
        stale = (
            f"AND EXISTS (SELECT 1 FROM {STATE_TABLE} s WHERE s.lead_id = l.id "
            "AND (s.icp_version_id IS NULL OR s.icp_version_id <> %s))"
        )
        stale_params = [icp_version_id]
    # One read: each lead with its account's attributes and its current fit (accounts repeat;
    # the memo keeps the engine from matching one twice).
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT l.id, l.account_id, l.seniority, l.title,
                   CASE WHEN a.country IS NOT NULL AND a.country <> ''
                        THEN a.country ELSE l.country END,
                   l.tier, s.fit_points, s.fit_excluded, s.tier,
                   a.industry, a.employees, a.annual_revenue, a.region, a.technologies, a.signals
            FROM {LEAD_TABLE} l
            LEFT JOIN {ACCOUNT_TABLE} a ON a.id = l.account_id
            LEFT JOIN {STATE_TABLE} s ON s.lead_id = l.id
            WHERE l.id BETWEEN %s AND %s {stale}
            """,
            [lo, hi, *stale_params],
        )
        leads = cursor.fetchall()
    changed_fits = []
    changed_tiers = []
    for row in leads:
        lead_id, account_id, seniority, title, country = row[:5]
        lead_tier, old_points, old_excluded, old_tier = row[5:9]
        if account_id is not None and account_id not in memo.accounts:
            memo.account_part(account_id, _account_facts_from_row(row[9:]))
        account_points, account_excluded = memo.account_part(account_id, None)
        person_points, person_excluded = memo.person_part(
            (seniority or "", title or "", country or "")
        )
        points = account_points + person_points
        excluded = account_excluded or person_excluded
        tier = memo.icp.tier_for(points, excluded=excluded)
        # Only what changed is written: an ICP edit usually moves a fraction of the leads.
        if (points, bool(excluded), tier) != (old_points, bool(old_excluded), old_tier):
            changed_fits.append((lead_id, points, excluded, tier))
        if tier != lead_tier:
            changed_tiers.append((lead_id, tier))
    if changed_fits or changed_tiers:
        _write_fit(changed_fits, changed_tiers, spec)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {STATE_TABLE} SET icp_version_id = %s WHERE lead_id BETWEEN %s AND %s "
            "AND (icp_version_id IS NULL OR icp_version_id <> %s)",
            [icp_version_id, lo, hi, icp_version_id],
        )


def _write_fit(
    fits: list[tuple[int, int, bool, str]], tiers: list[tuple[int, str]], spec: engine.ScoringSpec
) -> None:
    """Write changed fits (and the total and grade that follow) to the score states, and mirror
    changed tiers onto the leads."""
    band, band_params = _band_sql(f"{STATE_TABLE}.engagement", spec)
    with connection.cursor() as cursor:
        if _is_postgres():
            from psycopg2.extras import execute_values

            raw = cursor.cursor
            total = _quantized(_greatest(f"v.points + {STATE_TABLE}.engagement", "0"))
            if fits:
                execute_values(
                    raw,
                    f"""
                    UPDATE {STATE_TABLE} SET fit_points = v.points, fit_excluded = v.excluded,
                        tier = v.tier, total = {total},
                        grade = v.tier || {cursor.mogrify(band, band_params).decode()}
                    FROM (VALUES %s) AS v(id, points, excluded, tier)
                    WHERE {STATE_TABLE}.lead_id = v.id
                    """,
                    fits,
                    page_size=len(fits),
                )
            if tiers:
                execute_values(
                    raw,
                    f"""
                    UPDATE {LEAD_TABLE} SET tier = v.tier FROM (VALUES %s) AS v(id, tier)
                    WHERE {LEAD_TABLE}.id = v.id
                    """,
                    tiers,
                    page_size=len(tiers),
                )
            return
        # SQLite: a VALUES table names its columns column1, column2…
        total = _quantized(_greatest(f"v.column2 + {STATE_TABLE}.engagement", "0"))
        chunk = 2000
        for start in range(0, len(fits), chunk):
            part = fits[start : start + chunk]
            values = ", ".join(["(%s, %s, %s, %s)"] * len(part))
            cursor.execute(
                f"""
                UPDATE {STATE_TABLE} SET fit_points = v.column2, fit_excluded = v.column3,
                    tier = v.column4, total = {total}, grade = v.column4 || {band}
                FROM (VALUES {values}) AS v
                WHERE {STATE_TABLE}.lead_id = v.column1
                """,
                [*band_params, *(value for row in part for value in row)],
            )
        for start in range(0, len(tiers), chunk):
            part = tiers[start : start + chunk]
            values = ", ".join(["(%s, %s)"] * len(part))
            cursor.execute(
                f"""
                UPDATE {LEAD_TABLE} SET tier = v.column2 FROM (VALUES {values}) AS v
                WHERE {LEAD_TABLE}.id = v.column1
                """,
                [value for row in part for value in row],
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
    memo: FitMemo,
) -> None:
    """Make every lead of the range current with the ICP and model in force and the day: rows
    already current are skipped, so re-running a range is cheap and changes nothing."""
    ensure_states(lo, hi)
    reread_sums(
        lo, hi, spec=spec, model_id=model_id, as_of_day=as_of_day, keep_sums_of=keep_sums_of
    )
    if _has_stale_fit(lo, hi, icp_version_id):
        refit(lo, hi, memo=memo, icp_version_id=icp_version_id, spec=spec, only_stale=True)
    rescore_from_sums(lo, hi, spec=spec, model_id=model_id, as_of_day=as_of_day, only_stale=True)
