"""SQL expressions the KPI queries need and Django does not ship, for PostgreSQL and SQLite.

PostgreSQL is the database of record; SQLite runs the tests and local demos, so each expression
states how it reads on both (and refuses anything else rather than guess).
"""

from django.db import NotSupportedError
from django.db.models import Aggregate, FloatField, Func, IntegerField


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``: the
    percentile with linear interpolation between the closest ranks (``metrics.kpis.percentile``
    computes the same in Python where this aggregate does not exist, i.e. on SQLite)."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    empty_result_set_value = None

    def __init__(self, expression, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError("A percentile fraction lies between 0 and 1.")
        # Rendered into the SQL as a literal: a float from our own code, never user input.
        super().__init__(
            expression, fraction=repr(float(fraction)), output_field=FloatField(), **extra
        )

    def as_sql(self, compiler, connection, **extra_context):
        if connection.vendor != "postgresql":
            raise NotSupportedError("percentile_cont is PostgreSQL only; see metrics.queries.")
        return super().as_sql(compiler, connection, **extra_context)


class _Between(Func):
    """A difference between two expressions ``(start, end)``: end − start, in some unit."""

    arity = 2
    postgresql_template = ""
    sqlite_template = ""

    def _render(self, compiler, connection, template: str):
        start_sql, start_params = compiler.compile(self.source_expressions[0])
        end_sql, end_params = compiler.compile(self.source_expressions[1])
        # Parameters must follow their placeholders' order in the SQL, which puts end first.
        if template.index("%(start)s") < template.index("%(end)s"):
            params = (*start_params, *end_params)
        else:
            params = (*end_params, *start_params)
        return template % {"start": start_sql, "end": end_sql}, params

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"{type(self).__name__} supports PostgreSQL and SQLite only.")

    def as_postgresql(self, compiler, connection, **extra_context):
        return self._render(compiler, connection, self.postgresql_template)

    def as_sqlite(self, compiler, connection, **extra_context):
        return self._render(compiler, connection, self.sqlite_template)


class SecondsBetween(_Between):
    """Elapsed seconds from one instant to another (may be fractional)."""

    output_field = FloatField()
    postgresql_template = "CAST(EXTRACT(EPOCH FROM (%(end)s - %(start)s)) AS double precision)"
    # julianday is a double in days: rounded to the millisecond so whole seconds stay whole.
    sqlite_template = "ROUND((julianday(%(end)s) - julianday(%(start)s)) * 86400.0, 3)"


class DaysBetween(_Between):
    """Whole calendar days from one date to another (the same date → 0)."""

    output_field = IntegerField()
    postgresql_template = "(%(end)s - %(start)s)"
    sqlite_template = "CAST(julianday(%(end)s) - julianday(%(start)s) AS INTEGER)"


class EpochSeconds(Func):
    """An instant as seconds since the Unix epoch (``double precision``), PostgreSQL only: the
    rollups keep due times as such values, and a read compares them with ``now`` converted the
    same way, so the comparison agrees with one on the instants."""

    template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"
    output_field = FloatField()
