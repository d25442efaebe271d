"""Set-based scoring of a range of leads: the paths a full recompute and the decay run take.

Each function works on leads with ``lo <= id <= hi`` inside the caller's transaction and gives
exactly what ``scoring.engine.score_lead`` gives lead by lead (a property-based test holds them
to it):

* ``reread_sums`` — re-aggregates events into the per-kind decayed sums (half-life or caps
  changed, or a lead never scored): one ``UPDATE … FROM (SELECT … GROUP BY)``.
* ``refit_in_sql`` — fit points, exclusion and tier after an ICP change (or changed lead or
  account facts): the ICP's criteria compiled to SQL, one ``UPDATE … FROM`` per range; it also
  copies the lead's e-mail domain onto the state row. A publish's buckets join each account's
  part of the fit, computed once per ICP version (``account_fits_build``), instead of looking
  every lead's account up.
* ``rescore_from_sums`` — engagement, total and grade from the stored sums: a weight change, a
  new scoring day (decay) or the last step of the other two. It reads no event and no lead row:
  a publish of new weights rewrites the narrow state rows and nothing else.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection

from leads.choices import EventKind
from leads.models import Lead
from scoring import engine, retention
from scoring.models import AccountFit, AccountFitBuild, LeadScoreState, sum_field_name

LEAD_TABLE = Lead._meta.db_table
STATE_TABLE = LeadScoreState._meta.db_table
FIT_TABLE = AccountFit._meta.db_table
FIT_BUILD_TABLE = AccountFitBuild._meta.db_table
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


def ensure_states(lo: int, hi: int, *, states: int | None = None) -> int:
    """Create the missing score states of the range (new leads start unscored); ``states``:
    how many the range has, when the caller has just counted them."""
    with connection.cursor() as cursor:
        # Every state row has its lead, so equal counts mean none is missing: two index-only
        # counts cost a fraction of the anti-join that finds the missing ones (every publish
        # asks this of every range, and after the first full rescore the answer is "none").
        if states is None:
            cursor.execute(
                f"SELECT COUNT(*) FROM {STATE_TABLE} WHERE lead_id BETWEEN %s AND %s", [lo, hi]
            )
            states = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) FROM {LEAD_TABLE} WHERE id BETWEEN %s AND %s", [lo, hi])
        if cursor.fetchone()[0] == states:
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
    # Raw events, and the day counts retention folded of the months it dropped (exact: scoring
    # reads nothing of an event but its lead, kind and UTC day).
    day_counts, repeats = retention.event_day_counts_sql(
        f"e.lead_id BETWEEN %s AND %s {event_ids}", utc_day_sql, folded=retention.anything_folded()
    )
    sql = f"""
        UPDATE {STATE_TABLE} SET {", ".join([assignments, *zeroed])},
            epoch_day = %s, sums_model_id = %s, scoring_model_id = NULL
        FROM (
            SELECT s.lead_id, {", ".join(columns)}
            FROM {STATE_TABLE} s
            LEFT JOIN ({day_counts}) d ON d.lead_id = s.lead_id
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
                *[lo, hi, *event_id_params] * repeats,
                lo,
                hi,
                *stale_params,
                *state_id_params,
            ],
        )


def _engagement_sql(spec: engine.ScoringSpec, as_of_day: int, row: str = "s") -> tuple[str, list]:
    """SQL for a state row ``row``: the engine's engagement_from_sums (the e-mail adjustment
    from the domain the row keeps)."""
    params: list = []
    kinds = sorted(spec.rules)
    weighted = " + ".join(f"{FLOAT} * {row}.{sum_field_name(kind)}" for kind in kinds) or "0"
    params += [spec.rules[kind].weight for kind in kinds]
    power, power_params = _two(f"{row}.epoch_day - %s", spec.half_life_days)
    params += [as_of_day, *power_params]
    personal, personal_params = _in_list(engine.PERSONAL_EMAIL_DOMAINS)
    competitors, competitor_params = _in_list(spec.competitor_domains)
    domain = f"{row}.email_domain"
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
    valid_sums_of: Sequence[int] | None = None,
    ids: Sequence[int] | None = None,
) -> int:
    """Engagement, total and grade from the sums; with ``only_stale``, only for rows scored under
    another model or day (or whose sums were just reread); with ``valid_sums_of``, only rows
    whose sums were read under one of these models (the others stay stale); with ``ids``, only
    those leads. Returns the rows scored."""
    row = STATE_TABLE
    engagement, params = _engagement_sql(spec, as_of_day, row=row)
    stale = ""
    stale_params: list = []
    if only_stale:
        stale = (
            f"AND ({row}.scoring_model_id IS NULL OR {row}.scoring_model_id <> %s "
            f"OR {row}.as_of_day <> %s)"
        )
        stale_params = [model_id, as_of_day]
    if valid_sums_of is not None:
        valid, valid_params = _in_list(valid_sums_of)
        stale += f" AND {row}.sums_model_id IN {valid}"
        stale_params += valid_params
    state_ids, state_id_params = only_ids(f"{row}.lead_id", ids)
    band, band_params = _band_sql("x.engagement", spec)
    total = _quantized(_greatest(f"{row}.fit_points + x.engagement", "0"))
    # One statement on the narrow state table alone, bounded by the id range: no lead row is
    # read, and no join of the table to a subquery of itself (that hash-joined the whole table
    # on every bucket: a million rows read per 10,000 written). The engagement is computed once
    # per row by a sub-select over the row itself; as the SET reads only the row being updated,
    # a row another transaction changed meanwhile is recomputed from its new version.
    sql = f"""
        UPDATE {row} SET (engagement, total, grade) = (
                SELECT x.engagement, {total}, {row}.tier || {band}
                FROM (SELECT {engagement} AS engagement) x
            ),
            scoring_model_id = %s, as_of_day = %s
        WHERE {row}.lead_id BETWEEN %s AND %s {stale} {state_ids}
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                *band_params,
                *params,
                model_id,
                as_of_day,
                lo,
                hi,
                *stale_params,
                *state_id_params,
            ],
        )
        return cursor.rowcount


@dataclass(frozen=True)
class RangeStaleness:
    rows: int  # state rows in the range
    sums: bool  # some row's sums were read under another half-life or caps (or never)
    fit: int  # rows fitted under another ICP (or never)
    unscored: int  # rows scored under another model or day (or never)
    refittable: int = 0  # of the ``fit`` rows, those with a match mask under the same criteria

    @property
    def any(self) -> bool:
        return self.sums or self.fit or self.unscored > 0


def range_staleness(
    lo: int,
    hi: int,
    *,
    icp_version_id: int,
    model_id: int,
    keep_sums_of: Sequence[int],
    as_of_day: int,
    fit_conditions: int | None = None,
) -> RangeStaleness:
    """What is stale in the range, in one pass over its rows. An aggregate, not ``LIMIT 1``: with
    a limit PostgreSQL expected an early hit and scanned the whole table from its start, which,
    when the answer is no (as in most ranges of most publishes), read a million rows for each
    range of 10,000."""
    # No model's sums to keep: every row's sums are re-read.
    sums_stale, kept_params = "(1 = 1)", []
    if keep_sums_of:
        kept, kept_params = _in_list(keep_sums_of)
        sums_stale = f"(sums_model_id IS NULL OR sums_model_id NOT IN {kept})"
    fit_stale = "(icp_version_id IS NULL OR icp_version_id <> %s)"
    score_stale = "(scoring_model_id IS NULL OR scoring_model_id <> %s OR as_of_day <> %s)"
    false = "FALSE" if _is_postgres() else "0"
    any_of = "BOOL_OR" if _is_postgres() else "MAX"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COALESCE({any_of}(s), {false}), "
            "COALESCE(SUM(CASE WHEN f THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN o THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN f AND m THEN 1 ELSE 0 END), 0) FROM ("
            f"SELECT {sums_stale} AS s, {fit_stale} AS f, {score_stale} AS o, "
            f"COALESCE(fit_conditions = %s, {false}) AS m "
            f"FROM {STATE_TABLE} WHERE lead_id BETWEEN %s AND %s) AS r",
            [*kept_params, icp_version_id, model_id, as_of_day, fit_conditions, lo, hi],
        )
        rows, sums, fit, unscored, refittable = cursor.fetchone()
    return RangeStaleness(
        rows=rows,
        sums=bool(sums),
        fit=int(fit),
        unscored=int(unscored),
        refittable=int(refittable),
    )


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
    lock_rows=lambda: None,
) -> int:
    """Make every lead of the range current with the ICP and model in force and the day: rows
    already current are skipped, so re-running a range is cheap and changes nothing. Returns
    how many leads the range has (its state rows, once the missing ones are created), for the
    chunk's progress.

    ``lock_rows`` locks the range's rows in id order. Re-reading sums needs it first: that
    statement joins the table to an aggregate of its own rows, and a row a concurrent rescore
    changed meanwhile would get sums from before the change. A new ICP, new weights and the
    daily decay do without it (locking a million rows first cost a quarter of a publish): their
    statements compute each row from that row alone, so a row changed meanwhile is recomputed
    from its new version; and a row an incremental rescore left under older rules (its sums
    read with another half-life) is not scored but found by the last check, and the range is
    done again under the locks."""
    rules = {
        "icp_version_id": icp_version_id,
        "model_id": model_id,
        "keep_sums_of": keep_sums_of,
        "as_of_day": as_of_day,
        "fit_conditions": engine.conditions_key(icp),
    }
    valid_sums_of = sorted({*keep_sums_of, model_id})
    fits_held: list[bool] = []  # asked once per range, when a refit first needs them

    def catch_up(stale: RangeStaleness) -> int:
        if stale.sums:
            reread_sums(
                lo,
                hi,
                spec=spec,
                model_id=model_id,
                as_of_day=as_of_day,
                keep_sums_of=keep_sums_of,
            )
        # Most publishes change points or thresholds only: those rows refit from their masks.
        refitted = 0
        if stale.refittable:
            refitted = refit_from_matches(lo, hi, icp=icp, icp_version_id=icp_version_id, spec=spec)
        if refitted < stale.fit:
            if not fits_held:
                fits_held.append(account_fits_held(icp=icp, icp_version_id=icp_version_id))
            refit_in_sql(
                lo,
                hi,
                icp=icp,
                icp_version_id=icp_version_id,
                spec=spec,
                account_fits=fits_held[0],
            )
        return rescore_from_sums(
            lo,
            hi,
            spec=spec,
            model_id=model_id,
            as_of_day=as_of_day,
            only_stale=True,
            valid_sums_of=valid_sums_of,
        )

    stale = range_staleness(lo, hi, **rules)
    if ensure_states(lo, hi, states=stale.rows):
        stale = range_staleness(lo, hi, **rules)
    leads = stale.rows  # every lead of the range has its state row now
    if not stale.sums:
        if not stale.any:
            return leads
        # The refit (if any) fits every stale row, re-checking a row changed meanwhile; so the
        # range is current once every row that was unscored has been scored. Fewer means a
        # row was left under older rules meanwhile (its sums no longer valid): redone below.
        if catch_up(stale) == stale.unscored:
            return leads
    lock_rows()
    catch_up(range_staleness(lo, hi, **rules))
    return leads


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


def _lower(expression: str) -> str:
    return f"{'LOWER' if _is_postgres() else 'PY_LOWER'}({expression})"


def _effective_country(account_country: str) -> str:
    return (
        f"CASE WHEN {account_country} IS NOT NULL AND {account_country} <> '' "
        f"THEN {account_country} ELSE l.country END"
    )


EFFECTIVE_COUNTRY = _effective_country("a.country")


def _criterion_sql(
    criterion: engine.Criterion, *, country: str = EFFECTIVE_COUNTRY
) -> tuple[str, list]:
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
        "country": country,
    }[attribute]
    return f"{_lower(f'COALESCE({column}, {EMPTY})')} IN {values_sql}", values


def _fit_sql(
    icp: engine.IcpSpec,
    *,
    attributes: frozenset[str] | None = None,
    country: str = EFFECTIVE_COUNTRY,
) -> tuple[str, list, str, list]:
    """(points expression, params, excluded expression, params) over leads ``l``, accounts
    ``a``; with ``attributes``, from the criteria on those only."""
    points, points_params, exclusions, exclusion_params = [], [], [], []
    for criterion in icp.criteria:
        if attributes is not None and criterion.attribute not in attributes:
            continue
        condition, params = _criterion_sql(criterion, country=country)
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


def _not_inlined() -> str:
    """A subquery's tail that keeps the planner from merging it into the outer query, where
    each reference to one of its computed columns would compute it again."""
    return "OFFSET 0" if _is_postgres() else "LIMIT -1 OFFSET 0"


def _matches_sql(
    icp: engine.IcpSpec,
    *,
    attributes: frozenset[str] | None = None,
    country: str = EFFECTIVE_COUNTRY,
) -> tuple[str, list]:
    """(match mask expression, params) over leads ``l``, accounts ``a``: the bits of the criteria
    that match (``engine.criteria_matched``); with ``attributes``, of the criteria on those only.
    The bits are distinct, so they add up."""
    terms, params = [], []
    for criterion, bit in zip(icp.criteria, engine.match_bits(icp), strict=True):
        if attributes is not None and criterion.attribute not in attributes:
            continue
        condition, condition_params = _criterion_sql(criterion, country=country)
        terms.append(f"CASE WHEN {condition} THEN {bit} ELSE 0 END")
        params += condition_params
    return " + ".join(terms) or "0", params


def _fit_from_matches_sql(icp: engine.IcpSpec, matches: str) -> tuple[str, list, str]:
    """(points expression, params, excluded expression) of the ICP's criteria over a match mask
    column (``engine.fit_from_matches``)."""
    points, params, exclusion_bits = [], [], 0
    for criterion, bit in zip(icp.criteria, engine.match_bits(icp), strict=True):
        if criterion.is_exclusion:
            exclusion_bits |= bit
        elif criterion.points:
            points.append(f"CASE WHEN ({matches} & {bit}) <> 0 THEN %s ELSE 0 END")
            params.append(criterion.points)
    excluded = f"({matches} & {exclusion_bits}) <> 0" if exclusion_bits else "1 = 0"
    return " + ".join(points) or "0", params, excluded


# --- Account fits: each account's part of the fit, once per ICP version -----------------------
# Buckets take the shared form of this lock (namespace, key) while they join the fits of a
# version; a build takes it exclusively, as it drops the fits of other versions. A namespace of
# its own: 7301 is the buckets' (scoring.services), 7302 the leads app's.
ACCOUNT_FITS_LOCK = (7303, 1)


def _try_account_fits_lock(*, shared: bool) -> bool:
    function = "pg_try_advisory_xact_lock_shared" if shared else "pg_try_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", list(ACCOUNT_FITS_LOCK))
        return bool(cursor.fetchone()[0])


# Bumped by a statement trigger on every write to the accounts (scoring 0011): fits built at an
# older value are a snapshot of accounts that have changed since.
FIT_EPOCH = "scoring_account_fit_epoch"


def account_fits_built(icp_version_id: int) -> bool:
    """Whether the fits of this version are built, and no account was written since."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {FIT_BUILD_TABLE} WHERE icp_version_id = %s "
            f"AND epoch = (SELECT last_value FROM {FIT_EPOCH})",
            [icp_version_id],
        )
        return cursor.fetchone() is not None


def account_fits_build(*, icp: engine.IcpSpec, icp_version_id: int) -> int:
    """Compute every account's part of the fit under this ICP version in one statement (the
    criteria on account attributes, and the account's country for the lead's effective one),
    dropping those of other versions. The caller holds the lock exclusively (or runs alone).
    Returns the accounts."""
    true = "TRUE" if _is_postgres() else "1"
    false = "FALSE" if _is_postgres() else "0"
    if engine.conditions_key(icp) is not None:
        # The criteria are tested once, into the account's bits; points and exclusion are read
        # off them (a lead's own criteria have no bit here, so they add nothing).
        matches, matches_params = _matches_sql(icp, attributes=engine.ACCOUNT_ATTRIBUTES)
        points, points_params, excluded = _fit_from_matches_sql(icp, "m.matches")
        fits = (
            f"SELECT m.id, {points}, CASE WHEN {excluded} THEN {true} ELSE {false} END, "
            f"m.matches, m.country FROM (SELECT a.id, a.country, {matches} AS matches "
            f"FROM {ACCOUNT_TABLE} a {_not_inlined()}) m"
        )
        fits_params = [*points_params, *matches_params]
    else:
        points, points_params, excluded, excluded_params = _fit_sql(
            icp, attributes=engine.ACCOUNT_ATTRIBUTES
        )
        fits = (
            f"SELECT a.id, {points}, CASE WHEN {excluded} THEN {true} ELSE {false} END, 0, "
            f"a.country FROM {ACCOUNT_TABLE} a"
        )
        fits_params = [*points_params, *excluded_params]
    with connection.cursor() as cursor:
        epoch = 0
        if _is_postgres():
            # Read before the accounts: a write after it leaves these fits stale, never fresh.
            cursor.execute(f"SELECT last_value FROM {FIT_EPOCH}")
            epoch = cursor.fetchone()[0]
        # No reader is in the table (they hold the lock shared): emptied at once, and no dead
        # rows are left for a vacuum (autovacuum may be off).
        if _is_postgres():
            cursor.execute(f"TRUNCATE {FIT_TABLE}")
        else:
            cursor.execute(f"DELETE FROM {FIT_TABLE}")
        cursor.execute(f"DELETE FROM {FIT_BUILD_TABLE}")
        cursor.execute(
            f"INSERT INTO {FIT_TABLE} "
            "(icp_version_id, account_id, points, excluded, matches, country) "
            f"SELECT %s, f.* FROM ({fits}) f",
            [icp_version_id, *fits_params],
        )
        accounts = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {FIT_BUILD_TABLE} (icp_version_id, accounts, epoch, built_at) "
            "VALUES (%s, %s, %s, CURRENT_TIMESTAMP)",
            [icp_version_id, accounts, epoch],
        )
        if _is_postgres():
            # Planned as a narrow table probed by key, not from the stale size of its last
            # version.
            cursor.execute(f"ANALYZE {FIT_TABLE}")
    return accounts


def account_fits_held(*, icp: engine.IcpSpec, icp_version_id: int) -> bool:
    """For a bucket's refit, inside its transaction: whether it can join the account fits of
    this version, built (by this call, the first time a bucket needs them) and kept until the
    transaction ends. Never waits: while another transaction builds fits, or drops these for a
    newer version's, the answer is no and the bucket looks its leads' accounts up itself."""
    if not _is_postgres():
        # No trigger tells when the accounts change: the (small) embedded run reads them.
        return False
    if account_fits_built(icp_version_id):
        # Re-read under the lock: a build for another version may have dropped them meanwhile.
        return _try_account_fits_lock(shared=True) and account_fits_built(icp_version_id)
    if not _try_account_fits_lock(shared=False):
        return False
    if not account_fits_built(icp_version_id):  # another build may have committed meanwhile
        account_fits_build(icp=icp, icp_version_id=icp_version_id)
    return True


def refit_in_sql(
    lo: int,
    hi: int,
    *,
    icp: engine.IcpSpec,
    icp_version_id: int,
    spec: engine.ScoringSpec,
    ids: Sequence[int] | None = None,
    account_fits: bool = False,
) -> None:
    """Refit the range's stale leads from their facts: the score states in one statement (their
    match masks too), then the tier mirrored onto the leads whose tier changed, and only those.
    With ``ids``, refit exactly those leads, stale or not (their lead or account facts may have
    changed). With ``account_fits``, the accounts' part of the fit is read from the fits built
    for this version (the caller holds them: ``account_fits_held``), and the account table is
    not read."""
    row = STATE_TABLE
    true = "TRUE" if _is_postgres() else "1"
    false = "FALSE" if _is_postgres() else "0"
    key = engine.conditions_key(icp)
    if account_fits:
        # The lead's own criteria here, the account's from its fit row (none: no account).
        person = {
            "attributes": engine.PERSON_ATTRIBUTES,
            "country": _effective_country("f.country"),
        }
        # Only the fits of the range's accounts, probed by key: joined to the whole table, each
        # bucket hashed its leads and scanned every account's fit into the hash (at a million
        # leads, the bucket's join took 60-86 ms that way, 29-35 ms probed).
        range_ids, range_id_params = only_ids("id", ids)
        range_accounts = (
            f"SELECT account_id FROM {LEAD_TABLE} WHERE id BETWEEN %s AND %s {range_ids} "
            "AND account_id IS NOT NULL"
        )
        # As an array, probed key by key, never hashed against the table.
        postgres = _is_postgres()
        in_range = f"= ANY(ARRAY({range_accounts}))" if postgres else f"IN ({range_accounts})"
        accounts = (
            f"(SELECT account_id, matches, points, excluded, country FROM {FIT_TABLE} "
            f"WHERE icp_version_id = %s AND account_id {in_range}) f "
            "ON f.account_id = l.account_id"
        )
        accounts_params = [icp_version_id, lo, hi, *range_id_params]
    else:
        accounts, accounts_params = f"{ACCOUNT_TABLE} a ON a.id = l.account_id", []
    lead_ids, lead_id_params = only_ids("l.id", ids)
    lead_columns = (
        f"l.id AS lead_id, l.tier AS lead_tier, {_email_domain('l.email')} AS email_domain"
    )
    if key is not None:
        # The criteria are tested once, into the mask; points and exclusion are read off it
        # (the mask's subquery is not inlined: its expression would be evaluated once for
        # every criterion that reads a bit of it, ~15 × the work).
        if account_fits:
            own, matches_params = _matches_sql(icp, **person)
            matches = f"COALESCE(f.matches, 0) + {own}"
        else:
            matches, matches_params = _matches_sql(icp)
        points, points_params, excluded = _fit_from_matches_sql(icp, "m.matches")
        fitted = f"""
            SELECT m.lead_id, m.lead_tier, m.email_domain, m.matches, {points} AS points,
                   CASE WHEN {excluded} THEN {true} ELSE {false} END AS excluded
            FROM (
                SELECT {lead_columns}, {matches} AS matches
                FROM {LEAD_TABLE} l
                LEFT JOIN {accounts}
                WHERE l.id BETWEEN %s AND %s {lead_ids} {_not_inlined()}
            ) m
        """
        fitted_params = [*points_params, *matches_params]
    else:  # more criteria than a mask holds: no mask, and the next publish refits from facts
        if account_fits:
            own, points_params, own_excluded, excluded_params = _fit_sql(icp, **person)
            points = f"COALESCE(f.points, 0) + {own}"
            excluded = f"COALESCE(f.excluded, {false}) OR {own_excluded}"
        else:
            points, points_params, excluded, excluded_params = _fit_sql(icp)
        fitted = f"""
            SELECT {lead_columns}, CAST(NULL AS BIGINT) AS matches, {points} AS points,
                   CASE WHEN {excluded} THEN {true} ELSE {false} END AS excluded
            FROM {LEAD_TABLE} l
            LEFT JOIN {accounts}
            WHERE l.id BETWEEN %s AND %s {lead_ids}
        """
        fitted_params = [*points_params, *excluded_params]
    fitted_params += [*accounts_params, lo, hi, *lead_id_params]
    if ids is None:
        chosen, chosen_params = (
            f"AND ({row}.icp_version_id IS NULL OR {row}.icp_version_id <> %s)",
            [icp_version_id],
        )
    else:
        chosen, chosen_params = only_ids(f"{row}.lead_id", ids)
    # Both sides bounded by the range (an unbounded side made PostgreSQL scan the whole state
    # table on every bucket). The SET reads the state row itself for the engagement, so a row
    # another transaction changed meanwhile is refitted from its new version.
    set_fit, set_fit_params = _set_fit_sql(icp, spec)
    update = f"""
        UPDATE {row} SET {set_fit}, icp_version_id = %s, email_domain = x.email_domain,
            fit_matches = x.matches, fit_conditions = %s
        FROM ({fitted}) x
        WHERE {row}.lead_id = x.lead_id AND {row}.lead_id BETWEEN %s AND %s {chosen}
    """
    params = [
        *set_fit_params,
        icp_version_id,
        key,
        *fitted_params,
        lo,
        hi,
        *chosen_params,
    ]
    with connection.cursor() as cursor:
        if not _is_postgres():
            cursor.execute(update, params)
            _mirror_tiers_by_range(cursor, lo, hi, ids)
            return
        # The lead row is wide, indexed on tier and watched by the rollups' statement
        # triggers: it is written only where the tier changed, and not at all (no statement,
        # no trigger) in a range where none did, which is most ranges of most publishes.
        cursor.execute(
            f"WITH refit AS ({update} RETURNING {row}.lead_id, {row}.tier, x.lead_tier) "
            "SELECT lead_id, tier FROM refit WHERE tier <> lead_tier ORDER BY lead_id",
            params,
        )
        _mirror_tiers(cursor, cursor.fetchall())


def refit_from_matches(
    lo: int, hi: int, *, icp: engine.IcpSpec, icp_version_id: int, spec: engine.ScoringSpec
) -> int:
    """Refit the range's stale leads whose match mask was taken under criteria that test what
    this ICP's test (``engine.conditions_key``): from their score rows alone, without reading a
    lead or an account. A new version that changes points, exclusions or tier thresholds only
    (most edits of an ICP) refits every lead this way. Returns the rows refitted; the others
    (no mask, or other criteria) are left stale, for ``refit_in_sql``.

    A row another transaction changed meanwhile is refitted from its new version, and only
    while its mask and key are those read: a refit from facts meanwhile (a lead's facts
    changed) leaves it to ``refit_in_sql`` too."""
    key = engine.conditions_key(icp)
    if key is None:
        return 0
    row = STATE_TABLE
    true = "TRUE" if _is_postgres() else "1"
    false = "FALSE" if _is_postgres() else "0"
    points, points_params, excluded = _fit_from_matches_sql(icp, "m.fit_matches")
    set_fit, set_fit_params = _set_fit_sql(icp, spec)
    stale = "({0}.icp_version_id IS NULL OR {0}.icp_version_id <> %s)"
    update = f"""
        UPDATE {row} SET {set_fit}, icp_version_id = %s
        FROM (
            SELECT m.lead_id, m.tier AS old_tier, m.fit_matches AS matches, {points} AS points,
                   CASE WHEN {excluded} THEN {true} ELSE {false} END AS excluded
            FROM {row} m
            WHERE m.lead_id BETWEEN %s AND %s AND m.fit_conditions = %s AND {stale.format("m")}
        ) x
        WHERE {row}.lead_id = x.lead_id AND {row}.lead_id BETWEEN %s AND %s
          AND {row}.fit_matches = x.matches AND {row}.fit_conditions = %s
          AND {stale.format(row)}
    """
    params = [
        *set_fit_params,
        icp_version_id,
        *points_params,
        lo,
        hi,
        key,
        icp_version_id,
        lo,
        hi,
        key,
        icp_version_id,
    ]
    with connection.cursor() as cursor:
        if not _is_postgres():
            cursor.execute(update, params)
            refitted = cursor.rowcount
            _mirror_tiers_by_range(cursor, lo, hi, None)
            return refitted
        # The tier was the lead's before (the refits mirror it): the leads whose tier changed
        # are found on the score rows, and the wide lead table is read only to write those.
        changed = "FILTER (WHERE tier <> old_tier)"
        cursor.execute(
            f"WITH refit AS ({update} RETURNING {row}.lead_id, {row}.tier, x.old_tier) "
            f"SELECT COUNT(*), ARRAY_AGG(lead_id ORDER BY lead_id) {changed}, "
            f"ARRAY_AGG(tier ORDER BY lead_id) {changed} FROM refit",
            params,
        )
        refitted, changed_ids, changed_tiers = cursor.fetchone()
        _mirror_tiers(cursor, list(zip(changed_ids or [], changed_tiers or [], strict=True)))
    return refitted


def _set_fit_sql(icp: engine.IcpSpec, spec: engine.ScoringSpec) -> tuple[str, list]:
    """The SET of a refit, from ``x.points`` and ``x.excluded`` and the row's engagement."""
    row = STATE_TABLE
    tier = (
        "CASE WHEN x.excluded THEN 'D' WHEN x.points >= %s THEN 'A' WHEN x.points >= %s THEN 'B' "
        "WHEN x.points >= %s THEN 'C' ELSE 'D' END"
    )
    tier_params = [icp.tier_a_min_points, icp.tier_b_min_points, icp.tier_c_min_points]
    band, band_params = _band_sql(f"{row}.engagement", spec)
    total = _quantized(_greatest(f"x.points + {row}.engagement", "0"))
    return (
        f"fit_points = x.points, fit_excluded = x.excluded, tier = {tier}, total = {total}, "
        f"grade = {tier} || {band}",
        [*tier_params, *tier_params, *band_params],
    )


def _mirror_tiers(cursor, changed: list[tuple[int, str]]) -> None:
    """Copy new tiers onto the leads (PostgreSQL): (lead id, tier) pairs, in id order."""
    if changed:
        cursor.execute(
            f"UPDATE {LEAD_TABLE} SET tier = v.tier "
            "FROM unnest(%s::bigint[], %s::varchar[]) AS v(id, tier) "
            f"WHERE {LEAD_TABLE}.id = v.id AND {LEAD_TABLE}.tier <> v.tier",
            [[lead_id for lead_id, _ in changed], [tier for _, tier in changed]],
        )


def _mirror_tiers_by_range(cursor, lo: int, hi: int, ids: Sequence[int] | None) -> None:
    """Copy the range's new tiers onto the leads whose tier differs (the embedded database)."""
    mirrored, mirrored_params = only_ids("s.lead_id", ids)
    cursor.execute(
        f"""
        UPDATE {LEAD_TABLE} SET tier = s.tier FROM {STATE_TABLE} s
        WHERE s.lead_id = {LEAD_TABLE}.id AND s.lead_id BETWEEN %s AND %s
          AND {LEAD_TABLE}.id BETWEEN %s AND %s
          AND {LEAD_TABLE}.tier <> s.tier {mirrored}
        """,
        [lo, hi, lo, hi, *mirrored_params],
    )
