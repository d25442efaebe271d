"""Bulk writes of fact rows: ``COPY … FROM STDIN`` on PostgreSQL, ``executemany`` elsewhere.

The one place rows go into the database in bulk: the write layer (``leads.services.facts``)
streams the CSV import's rows through it, and the demo loader its generated tables. Rows are
tuples in the order of the fields named; ids are handed out before the write (from the table's
sequence on PostgreSQL, after the highest id in use on SQLite, whose writer lock the caller's
transaction holds), so history rows can point at new leads without reading anything back.
Nothing here validates: callers validated every row before it reaches a writer, so a database
error here is a bug or a concurrent change, and fails the whole transaction.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.db import connection as default_connection
from django.db import models
from django.dispatch import Signal

COPY_BUFFER = 1 << 18
# Rows a statement when staged rows are written: below it one INSERT … SELECT … ORDER BY; above
# it the rows are numbered in a second temporary table first (a copy of the staged rows), so each
# statement is a range; 250k rows take seconds, far inside the 120 s after which a job whose
# progress stopped counts as dead.
STAGED_BATCH = 250_000
QUEUE_DEPTH = 4  # batches waiting for the COPY thread (bounds memory)

# (label, rows, seconds): called once a batch is in the database (from the COPY thread).
Written = Callable[[str, int, float], None]


def _json_text(value):
    if value is None:
        return None
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, ensure_ascii=False)


def constraints_per_statement(connection=default_connection) -> None:
    """Check foreign keys per statement, not at commit (PostgreSQL): the server's queue of
    deferred checks stays small on a million-row write, and the time is spent where it is due."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


# Index builds after a load sort once instead of maintaining each index row by row.
LOAD_MAINTENANCE_WORK_MEM = "256MB"
# Sent after ``indexes_built_after`` loaded ``tables`` with their triggers off: what other apps
# derive from those tables by trigger (the metrics' rollups) is stale until they rebuild it.
tables_loaded_bare = Signal()


@contextmanager
def indexes_built_after(connection, model_list: Iterable[type[models.Model]]) -> Iterator[None]:
    """Load empty tables without their secondary indexes and foreign keys, then build them once.

    For a load into tables that are empty inside the caller's transaction (the demo seed): a
    COPY into a table with no index but its primary key runs many times faster, one sorted build
    per index costs less than ten million inserts into it, and re-adding a foreign key checks
    every row in one join. Unique indexes are rebuilt too, so a duplicate still fails the load,
    at the end. The caller's transaction holds the tables exclusively meanwhile. No-op outside
    PostgreSQL.
    """
    if connection.vendor != "postgresql":
        yield
        return
    tables = [model._meta.db_table for model in model_list]
    # Checks still pending from the transaction's earlier writes would forbid the ALTER TABLEs.
    constraints_per_statement(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, ix.indexrelid::regclass::text, pg_get_indexdef(ix.indexrelid)
            FROM pg_index ix JOIN pg_class c ON c.oid = ix.indrelid
            WHERE c.relname = ANY(%s) AND NOT ix.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid)
            """,
            [tables],
        )
        # A partitioned table's index reads "ON ONLY": rebuilt so, it would cover no partition.
        indexes = [(t, n, d.replace(" ON ONLY ", " ON ")) for t, n, d in cursor.fetchall()]
        cursor.execute(
            """
            SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            WHERE c.relname = ANY(%s) AND k.contype = 'f'
            """,
            [tables],
        )
        foreign_keys = cursor.fetchall()
        quote = connection.ops.quote_name
        for table, name, _definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for _table, name, _definition in indexes:
            cursor.execute(f"DROP INDEX {name}")
        # Other apps' triggers (the rollups' change marks) would look rows up by indexes that
        # are not there: off during the load; ``tables_loaded_bare`` tells those apps after.
        for table in tables:
            cursor.execute(f"ALTER TABLE {quote(table)} DISABLE TRIGGER USER")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = %s", [LOAD_MAINTENANCE_WORK_MEM])
        for _table, _name, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
        for table in tables:
            cursor.execute(f"ALTER TABLE {quote(table)} ENABLE TRIGGER USER")
    tables_loaded_bare.send(sender=indexes_built_after, tables=tuple(tables))


def rows_matching(
    model, column: str, keys, fields: list[str], *, where: dict | None = None
) -> list[dict]:
    """Rows whose (non-blank) ``column`` is one of ``keys``, as dicts of ``fields`` ("pk" or
    field names; foreign keys as ``<name>_id``). ``IN`` on SQLite; on PostgreSQL one statement
    whatever the count, which probes the column's index once per key (a lateral subquery,
    kept from being flattened into a join by ``OFFSET 0``): as ``= ANY(array)`` or a plain join,
    the planner read every row matching ``where`` instead whenever the table had no statistics
    (the events' key table, written by a trigger, with autovacuum off: 10M keys read for each
    chunk of 5,000, 2 s a chunk). ``<> ''`` lets the partial unique indexes serve the probes."""
    keys = sorted({key for key in keys if key})  # in index order, each once
    if not keys:
        return []
    connection = default_connection
    if connection.vendor != "postgresql":
        found = []
        for start in range(0, len(keys), 10_000):  # below SQLite's variable limit
            queryset = model.objects.filter(
                **{f"{column}__in": keys[start : start + 10_000], **(where or {})}
            )
            found += queryset.values(*fields)
        return found
    opts, quote = model._meta, connection.ops.quote_name

    def column_of(name: str) -> str:
        if name == "pk":
            return quote(opts.pk.column)
        return quote(opts.get_field(name).column)  # names and attnames (account_id) both

    target = column_of(column)
    conditions = [f"{target} = wanted.key", f"{target} <> ''"]
    params: list = [keys]
    for name, value in (where or {}).items():
        conditions.append(f"{column_of(name)} = %s")
        params.append(value)
    selected = ", ".join(column_of(name) for name in fields)
    sql = (
        "SELECT found.* FROM unnest(%s::text[]) AS wanted(key) CROSS JOIN LATERAL "
        f"(SELECT {selected} FROM {quote(opts.db_table)} "
        f"WHERE {' AND '.join(conditions)} OFFSET 0) AS found"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(fields, row, strict=True)) for row in cursor.fetchall()]


class _Columns:
    def __init__(self, connection, model: type[models.Model], fields: Sequence[str]) -> None:
        opts = model._meta
        self.fields = [opts.get_field(name) for name in fields]
        quote = connection.ops.quote_name
        self.table = quote(opts.db_table)
        self.columns = [quote(f.column) for f in self.fields]
        self.not_null = [quote(f.column) for f in self.fields if not f.null]
        # COPY reads str() of everything else as it is: datetimes ("2026-03-01 10:00:00+00:00"),
        # booleans (True / False), decimals. Only JSON needs writing out.
        self.json_positions = [
            i for i, f in enumerate(self.fields) if isinstance(f, models.JSONField)
        ]
        self.datetime_positions = [
            i for i, f in enumerate(self.fields) if isinstance(f, models.DateTimeField)
        ]


class Writer:
    """Base: the database-independent bookkeeping.

    ``insert(…, prepared=True)`` takes rows already in database form (JSON as text), as the
    demo generator makes them; otherwise values are Python values of the model's fields.
    ``after_flush(callback)`` runs ``callback`` once everything queued so far is written (at
    once when nothing is queued): the write layer announces changed leads that way."""

    def __init__(self, connection, *, on_written: Written | None = None) -> None:
        self.connection = connection
        self.on_written = on_written
        self._columns: dict[tuple, _Columns] = {}
        self.rows_written = 0
        # When a set, the write layer adds the leads it would announce here instead, and the
        # caller announces them once (``leads.services.facts.announce_collected``): an import
        # marks each lead for rescoring once, not once per chunk that touched it.
        self.announced: set[int] | None = None

    def columns(self, model, fields) -> _Columns:
        key = (model, tuple(fields))
        if key not in self._columns:
            self._columns[key] = _Columns(self.connection, model, fields)
        return self._columns[key]

    def _written(self, label: str, rows: int, seconds: float) -> None:
        self.rows_written += rows
        if self.on_written is not None:
            self.on_written(label, rows, seconds)

    def after_flush(self, callback: Callable[[], None]) -> None:
        callback()

    def flush(self) -> None:
        """Wait for writes in flight; call before reading what was written."""

    def close(self) -> None:
        self.flush()

    def reserve_ids(self, model: type[models.Model], count: int) -> None:
        """Take ids ahead for ``allocate_ids`` (where taking them costs a statement)."""

    def stage(self, model, fields: Sequence[str], rows: Iterable[tuple]) -> None:
        """Queue rows for ``insert_staged`` without writing them to the model's table: nothing
        is written there (no id is taken from its sequence) until ``insert_staged``, so a
        caller that finds a problem meanwhile rolls back having written nothing."""
        raise NotImplementedError

    def insert_staged(
        self,
        model,
        fields: Sequence[str],
        *,
        order_by: Sequence[str],
        batch: int = STAGED_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write every row staged for ``(model, fields)``, ordered by ``order_by`` (fields
        among ``fields``: rows in an index's order touch each of its pages once), ``batch``
        rows a statement, calling ``progress(rows written so far)`` after each (a long write
        keeps showing it is alive). Returns the rows written."""
        raise NotImplementedError


class InsertWriter(Writer):
    """SQLite and others: parameterized ``executemany``, values prepared by the model fields."""

    def __init__(self, connection, **kwargs) -> None:
        super().__init__(connection, **kwargs)
        self._next_id: dict[type, int] = {}
        self._staged: dict[tuple, list[tuple]] = {}  # (model, fields) → rows (in memory)

    def allocate_ids(self, model: type[models.Model], count: int) -> list[int]:
        if model not in self._next_id:
            table = model._meta.db_table
            with self.connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT COALESCE(MAX({self.connection.ops.quote_name('id')}), 0) "
                    f"FROM {self.connection.ops.quote_name(table)}"
                )
                top = cursor.fetchone()[0]
                if self.connection.vendor == "sqlite":
                    cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
                    found = cursor.fetchone()
                    top = max(top, found[0] if found else 0)
            self._next_id[model] = top + 1
        first = self._next_id[model]
        self._next_id[model] = first + count
        return list(range(first, first + count))

    def _prepared(self, spec: _Columns, rows):
        connection = self.connection
        fields = spec.fields
        for row in rows:
            yield [
                f.get_db_prep_save(value, connection) if value is not None else None
                for f, value in zip(fields, row, strict=True)
            ]

    def insert(
        self,
        model,
        fields: Sequence[str],
        rows: Iterable[tuple],
        *,
        prepared: bool = False,
        label: str = "",
    ) -> None:
        rows = list(rows)
        if not rows:
            return
        started = time.perf_counter()
        spec = self.columns(model, fields)
        placeholders = ", ".join(["%s"] * len(spec.columns))
        sql = f"INSERT INTO {spec.table} ({', '.join(spec.columns)}) VALUES ({placeholders})"
        params = rows if prepared else list(self._prepared(spec, rows))
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, params)
        self._written(label or model._meta.label_lower, len(rows), time.perf_counter() - started)

    def stage(self, model, fields: Sequence[str], rows: Iterable[tuple]) -> None:
        self._staged.setdefault((model, tuple(fields)), []).extend(rows)

    def insert_staged(self, model, fields, *, order_by, batch=STAGED_BATCH, progress=None) -> int:
        rows = self._staged.pop((model, tuple(fields)), [])
        positions = [list(fields).index(name) for name in order_by]
        rows.sort(key=lambda row: tuple(row[p] for p in positions))
        for start in range(0, len(rows), batch):
            self.insert(model, fields, rows[start : start + batch])
            if progress is not None:
                progress(min(start + batch, len(rows)))
        return len(rows)

    def update(self, model, fields: Sequence[str], rows: list[tuple]) -> None:
        """``rows`` are ``(pk, *values)``."""
        if not rows:
            return
        spec = self.columns(model, fields)
        assignments = ", ".join(f"{column} = %s" for column in spec.columns)
        pk = self.connection.ops.quote_name(model._meta.pk.column)
        sql = f"UPDATE {spec.table} SET {assignments} WHERE {pk} = %s"
        params = [
            [*values, row[0]]
            for row, values in zip(rows, self._prepared(spec, (r[1:] for r in rows)), strict=True)
        ]
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, params)
        self.rows_written += len(rows)


class CopyWriter(Writer):
    """PostgreSQL: batches go in with COPY, as CSV built in memory, on a thread of their own
    fed by a short queue, so the caller goes on parsing or generating while the database
    writes. ``flush`` waits until the queue is empty; callers flush before they read from the
    database again (one connection: one statement at a time). Updates go through a temporary
    table: ``COPY`` into it, then one ``UPDATE … FROM``."""

    def __init__(self, connection, **kwargs) -> None:
        super().__init__(connection, **kwargs)
        # The raw driver cursor: Django's wrapper refuses use from another thread.
        self.raw = connection.connection.cursor()
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.pending: list[Callable[[], None]] = []  # after_flush callbacks
        self._queued = 0
        self._temp_tables = 0
        self._staging: dict[tuple, str] = {}  # (model, fields) → its temporary table
        self._reserved: dict[type, list[int]] = {}  # ids taken by reserve_ids, not yet handed out

    def reserve_ids(self, model: type[models.Model], count: int) -> None:
        """Take ``count`` ids from the model's sequence now, for later ``allocate_ids`` calls,
        which then run no statement: they do not wait for the COPYs in flight (a caller
        writing chunk after chunk keeps the writer's thread busy while it builds the next)."""
        self._reserved.setdefault(model, []).extend(self._next_ids(model, count))

    def allocate_ids(self, model: type[models.Model], count: int) -> list[int]:
        reserved = self._reserved.get(model, [])
        taken, self._reserved[model] = reserved[:count], reserved[count:]
        return taken + self._next_ids(model, count - len(taken))

    def _next_ids(self, model: type[models.Model], count: int) -> list[int]:
        if count <= 0:
            return []
        self.flush()
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [model._meta.db_table, model._meta.pk.column, count],
            )
            return [row[0] for row in cursor.fetchall()]

    @staticmethod
    def _buffer(spec: _Columns, rows, *, prepared: bool = False) -> io.StringIO:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        json_positions = [] if prepared else spec.json_positions
        if rows and (json_positions or spec.datetime_positions):
            # Column by column: a list per row and a loop over its JSON fields cost more than
            # the COPY of the row; an instant's text costs microseconds, so a column of few
            # distinct instants (the time of the import on every row) writes each once.
            columns = list(zip(*rows, strict=True))
            for position in json_positions:
                columns[position] = map(_json_text, columns[position])
            for position in spec.datetime_positions:
                distinct = set(columns[position])
                if len(distinct) * 2 < len(rows):
                    text = {value: value if value is None else str(value) for value in distinct}
                    columns[position] = map(text.__getitem__, columns[position])
            rows = zip(*columns, strict=True)
        writer.writerows(rows)
        buffer.seek(0)
        return buffer

    @staticmethod
    def _copy_sql(table: str, spec: _Columns) -> str:
        options = "FORMAT csv"
        if spec.not_null:
            # Unquoted empty fields are NULL in CSV; in NOT NULL columns they are empty text.
            options += f", FORCE_NOT_NULL ({', '.join(spec.not_null)})"
        return f"COPY {table} ({', '.join(spec.columns)}) FROM STDIN WITH ({options})"

    def insert(
        self,
        model,
        fields: Sequence[str],
        rows: Iterable[tuple],
        *,
        prepared: bool = False,
        label: str = "",
    ) -> None:
        """Queue a COPY (the CSV is built here, the COPY runs on the writer's thread)."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return
        spec = self.columns(model, fields)
        buffer = self._buffer(spec, rows, prepared=prepared)
        self._queue_copy(label or model._meta.label_lower, len(rows), spec.table, spec, buffer)

    def _queue_copy(self, label: str, count: int, table: str, spec: _Columns, buffer) -> None:
        self._start()
        self._raise_error()
        self._queued += 1
        self.queue.put((label, count, self._copy_sql(table, spec), buffer))

    def stage(self, model, fields: Sequence[str], rows: Iterable[tuple]) -> None:
        """COPY into a temporary table of the model's columns (no indexes, no sequence, no
        WAL), on the writer's thread like ``insert``."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return
        spec = self.columns(model, fields)
        key = (model, tuple(fields))
        temp = self._staging.get(key)
        if temp is None:
            self.flush()
            self._temp_tables += 1
            temp = self.connection.ops.quote_name(f"bulk_stage_{self._temp_tables}")
            with self.connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS "
                    f"SELECT {', '.join(spec.columns)} FROM {spec.table} WITH NO DATA"
                )
            self._staging[key] = temp
        label = f"{model._meta.label_lower} (staged)"
        self._queue_copy(label, len(rows), temp, spec, self._buffer(spec, rows))

    def insert_staged(self, model, fields, *, order_by, batch=STAGED_BATCH, progress=None) -> int:
        temp = self._staging.pop((model, tuple(fields)), None)
        if temp is None:
            return 0
        self.flush()
        spec = self.columns(model, fields)
        columns = ", ".join(spec.columns)
        order = ", ".join(spec.columns[list(fields).index(name)] for name in order_by)
        quote = self.connection.ops.quote_name
        ordered = quote(f"{temp.strip(chr(34))}_ordered")
        written = 0
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {temp}")
            total = cursor.fetchone()[0]
            if total <= batch:  # one statement
                started = time.perf_counter()
                cursor.execute(
                    f"INSERT INTO {spec.table} ({columns}) SELECT {columns} FROM {temp} "
                    f"ORDER BY {order}"
                )
                cursor.execute(f"DROP TABLE {temp}")
                self._written(model._meta.label_lower, total, time.perf_counter() - started)
                if progress is not None:
                    progress(total)
                return total
            # Sorted once and numbered, so each batch is a range of the order.
            cursor.execute(
                f"CREATE TEMP TABLE {ordered} ON COMMIT DROP AS SELECT row_number() OVER "
                f"(ORDER BY {order}) AS bulk_position, {columns} FROM {temp}"
            )
            cursor.execute(f"DROP TABLE {temp}")
            cursor.execute(f"CREATE INDEX ON {ordered} (bulk_position)")
            for start in range(0, total, batch):
                started = time.perf_counter()
                cursor.execute(
                    f"INSERT INTO {spec.table} ({columns}) SELECT {columns} FROM {ordered} "
                    "WHERE bulk_position > %s AND bulk_position <= %s ORDER BY bulk_position",
                    [start, start + batch],
                )
                written += cursor.rowcount
                self._written(model._meta.label_lower, cursor.rowcount,
                              time.perf_counter() - started)  # fmt: skip
                if progress is not None:
                    progress(written)
            cursor.execute(f"DROP TABLE {ordered}")
        return written

    def _copy_loop(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None:  # after a failure, drain without writing
                    label, count, sql, buffer = item
                    started = time.perf_counter()
                    self.raw.copy_expert(sql, buffer, COPY_BUFFER)
                    self._written(label, count, time.perf_counter() - started)
            except BaseException as problem:  # re-raised in the caller's thread
                self.error = problem
            finally:
                self.queue.task_done()

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._copy_loop, name="bulk-copy",
                                           daemon=True)  # fmt: skip
            self.thread.start()

    def _raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def after_flush(self, callback: Callable[[], None]) -> None:
        if self._queued:
            self.pending.append(callback)
        else:
            callback()

    def flush(self) -> None:
        if self.thread is not None:
            self.queue.join()
        self._raise_error()
        self._queued = 0
        while self.pending:
            self.pending.pop(0)()

    def update(self, model, fields: Sequence[str], rows: list[tuple]) -> None:
        """``rows`` are ``(pk, *values)``."""
        if not rows:
            return
        self.flush()
        opts = model._meta
        spec = self.columns(model, [opts.pk.name, *fields])
        quote = self.connection.ops.quote_name
        self._temp_tables += 1
        temp = quote(f"bulk_update_{self._temp_tables}")
        pk = quote(opts.pk.column)
        assignments = ", ".join(f"{column} = u.{column}" for column in spec.columns[1:])
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS "
                f"SELECT {', '.join(spec.columns)} FROM {spec.table} WITH NO DATA"
            )
            self.raw.copy_expert(self._copy_sql(temp, spec), self._buffer(spec, rows))
            cursor.execute(
                f"UPDATE {spec.table} AS t SET {assignments} FROM {temp} AS u WHERE t.{pk} = u.{pk}"
            )
            cursor.execute(f"DROP TABLE {temp}")
        self.rows_written += len(rows)

    def close(self) -> None:
        """Stop the thread; raises a write's error. Pending ``after_flush`` callbacks are
        dropped: a caller that meant them flushed before closing."""
        try:
            if self.thread is not None:
                self.queue.put(None)
                self.thread.join()
                self.thread = None
            self._raise_error()
        finally:
            self.pending.clear()
            self.raw.close()


def writer_for(connection=default_connection, *, on_written: Written | None = None) -> Writer:
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        return CopyWriter(connection, on_written=on_written)
    return InsertWriter(connection, on_written=on_written)
