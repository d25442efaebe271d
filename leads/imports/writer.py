"""Bulk writes for imports: ``COPY … FROM STDIN`` on PostgreSQL, ``executemany`` elsewhere.

Rows are tuples in the order of the fields named; ids are handed out before the write (from
the table's sequence on PostgreSQL, after the highest id in use on SQLite, whose writer lock the
import's transaction holds), so history rows can point at new leads without reading anything
back. Nothing here validates: the import validated every row before it reaches a writer, so a
database error here is a bug or a concurrent change, and fails the whole import.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import threading
from collections.abc import Sequence

from django.db import models
from psycopg2.errors import UniqueViolation

COPY_BUFFER = 1 << 18
QUEUE_DEPTH = 4  # batches waiting for the COPY thread (bounds memory)


def _json_text(value):
    if value is None:
        return None
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, ensure_ascii=False)


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


class Writer:
    """Base: the database-independent bookkeeping."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self._columns: dict[tuple, _Columns] = {}
        self.rows_written = 0

    def columns(self, model, fields) -> _Columns:
        key = (model, tuple(fields))
        if key not in self._columns:
            self._columns[key] = _Columns(self.connection, model, fields)
        return self._columns[key]

    def flush(self) -> None:
        """Wait for writes in flight; call before reading what was written."""

    def close(self) -> None:
        self.flush()


class InsertWriter(Writer):
    """SQLite and others: parameterized ``executemany``, values prepared by the model fields."""

    def __init__(self, connection) -> None:
        super().__init__(connection)
        self._next_id: dict[type, int] = {}

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

    def defer(self, statement) -> None:
        with self.connection.cursor() as cursor:
            statement(cursor)

    def _prepared(self, spec: _Columns, rows):
        connection = self.connection
        fields = spec.fields
        for row in rows:
            yield [
                f.get_db_prep_save(value, connection) if value is not None else None
                for f, value in zip(fields, row, strict=True)
            ]

    def insert(self, model, fields: Sequence[str], rows: list[tuple], on_conflict=None) -> None:
        if not rows:
            return
        spec = self.columns(model, fields)
        placeholders = ", ".join(["%s"] * len(spec.columns))
        sql = f"INSERT INTO {spec.table} ({', '.join(spec.columns)}) VALUES ({placeholders})"
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, list(self._prepared(spec, rows)))
        self.rows_written += len(rows)

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
    fed by a short queue (as the demo loader does), so the importing thread goes on parsing
    while the database writes. ``flush`` waits until the queue is empty; the import calls it
    before it reads from the database again (one connection: one statement at a time).
    Updates go through a temporary table: ``COPY`` into it, then one ``UPDATE … FROM``."""

    def __init__(self, connection) -> None:
        super().__init__(connection)
        # The raw driver cursor: Django's wrapper refuses use from another thread.
        self.raw = connection.connection.cursor()
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.conflicts: list = []
        self._temp_tables = 0

    def allocate_ids(self, model: type[models.Model], count: int) -> list[int]:
        if count == 0:
            return []
        self.flush()
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [model._meta.db_table, model._meta.pk.column, count],
            )
            return [row[0] for row in cursor.fetchall()]

    @staticmethod
    def _buffer(spec: _Columns, rows) -> io.StringIO:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if spec.json_positions:
            positions = spec.json_positions
            rows = [list(row) for row in rows]
            for row in rows:
                for position in positions:
                    row[position] = _json_text(row[position])
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

    def insert(self, model, fields: Sequence[str], rows: list[tuple], on_conflict=None) -> None:
        """Queue a COPY. With ``on_conflict``, the COPY runs under a savepoint: should a row
        break a unique constraint, the batch is undone and ``on_conflict()`` is called (by
        ``flush``, in the importing thread) to write it again after checking."""
        if not rows:
            return
        spec = self.columns(model, fields)
        self._start()
        self._raise_error()
        self.queue.put((spec, rows, on_conflict))
        self.rows_written += len(rows)

    def _copy_loop(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None:  # after a failure, drain without writing
                    if callable(item):
                        item(self.raw)
                    else:
                        self._copy(*item)
            except BaseException as problem:  # re-raised in the importing thread
                self.error = problem
            finally:
                self.queue.task_done()

    def defer(self, statement) -> None:
        """Queue ``statement(cursor)`` to run in order with the COPYs (on the raw cursor)."""
        self._start()
        self._raise_error()
        self.queue.put(statement)

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._copy_loop, name="import-copy",
                                           daemon=True)  # fmt: skip
            self.thread.start()

    def _copy(self, spec: _Columns, rows, on_conflict) -> None:
        buffer = self._buffer(spec, rows)
        sql = self._copy_sql(spec.table, spec)
        if on_conflict is None:
            self.raw.copy_expert(sql, buffer, size=COPY_BUFFER)
            return
        self.raw.execute("SAVEPOINT import_copy")
        try:
            self.raw.copy_expert(sql, buffer, size=COPY_BUFFER)
        except UniqueViolation:
            self.raw.execute("ROLLBACK TO SAVEPOINT import_copy")
            self.conflicts.append(on_conflict)
            self.rows_written -= len(rows)
        self.raw.execute("RELEASE SAVEPOINT import_copy")

    def _raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def flush(self) -> None:
        while True:
            if self.thread is not None:
                self.queue.join()
            self._raise_error()
            if not self.conflicts:
                return
            self.conflicts.pop(0)()  # may queue the batch again

    def update(self, model, fields: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        self.flush()
        opts = model._meta
        spec = self.columns(model, [opts.pk.name, *fields])
        quote = self.connection.ops.quote_name
        self._temp_tables += 1
        temp = quote(f"import_update_{self._temp_tables}")
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
        try:
            if self.thread is not None:
                self.queue.put(None)
                self.thread.join()
                self.thread = None
            self._raise_error()
        finally:
            self.raw.close()


def writer_for(connection) -> Writer:
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        return CopyWriter(connection)
    return InsertWriter(connection)
