"""Running a compiled statement: a fresh sandboxed DuckDB per statement holding only the
caller's views of the tables it reads, and the result as the platform sends it (INLINE,
JSON_ARRAY: every value a string or null, in chunks).

Bounded: a statement that runs past STATEMENT_TIME_LIMIT_SECONDS is stopped, a result over the
INLINE limit fails as on the platform, and DuckDB's errors reach the caller without the
engine's SQL (it names the views, not the tables).
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from obo_auth.local.catalog.store import sandboxed_database
from obo_auth.local.sql.compile import VIEW_PREFIX, Compiled
from obo_auth.local.sql.failures import StatementFailed

STATEMENT_TIME_LIMIT_SECONDS = 60.0
# Statements with the INLINE disposition fail above 25 MiB of result (the platform's limit).
INLINE_LIMIT_BYTES = 25 * 1024 * 1024
# A chunk ends once it holds this much; a row is never split.
CHUNK_BYTES = 1024 * 1024
_FETCH_ROWS = 1024
_WATCH_SECONDS = 0.05
_VIEW_NAME = re.compile(rf'"?{re.escape(VIEW_PREFIX)}\d+"?')

# DuckDB type -> the platform's (type_name, type_text); nested and decimal types are built below.
_TYPES = {
    "boolean": ("BOOLEAN", "boolean"),
    "tinyint": ("BYTE", "tinyint"),
    "smallint": ("SHORT", "smallint"),
    "integer": ("INT", "int"),
    "bigint": ("LONG", "bigint"),
    "utinyint": ("SHORT", "smallint"),
    "usmallint": ("INT", "int"),
    "uinteger": ("LONG", "bigint"),
    "float": ("FLOAT", "float"),
    "double": ("DOUBLE", "double"),
    "varchar": ("STRING", "string"),
    "date": ("DATE", "date"),
    "timestamp": ("TIMESTAMP", "timestamp_ntz"),
    "timestamp with time zone": ("TIMESTAMP", "timestamp"),
    "blob": ("BINARY", "binary"),
    "interval": ("INTERVAL", "interval"),
    "null": ("NULL", "void"),
}
_WIDE_INTEGERS = {"hugeint": 38, "uhugeint": 38, "ubigint": 20}


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str
    type_text: str
    position: int
    precision: int | None = None  # DECIMAL only
    scale: int | None = None


@dataclass(frozen=True)
class Chunk:
    index: int
    row_offset: int
    rows: list[list[str | None]]


@dataclass(frozen=True)
class Result:
    columns: list[Column]
    chunks: list[Chunk]  # at least one, empty for an empty result
    row_count: int
    byte_count: int
    truncated: bool  # cut short by the request's row_limit or byte_limit


class Execution:
    """One statement's run; ``cancel`` (from another thread) stops it."""

    def __init__(self, compiled: Compiled, *, row_limit: int | None, byte_limit: int | None):
        self._compiled = compiled
        self._row_limit = row_limit
        self._byte_limit = byte_limit
        self._lock = threading.Lock()
        self._database: duckdb.DuckDBPyConnection | None = None
        self._stopped_because: str | None = None

    def cancel(self) -> None:
        self._stop("it was canceled")

    def run(self) -> Result:
        """The result (blocking: call it from a worker thread); StatementFailed if it cannot run."""
        with self._lock:
            if self._stopped_because:
                raise StatementFailed(None, f"The statement did not run: {self._stopped_because}.")
            self._database = sandboxed_database()
        finished = threading.Event()
        threading.Thread(target=self._watch, args=(finished, time.monotonic() + STATEMENT_TIME_LIMIT_SECONDS), daemon=True).start()
        try:
            for view, seen in self._compiled.views.items():
                self._database.register(view, seen.data)
            return self._fetch(self._database.execute(_one_query(self._compiled.duckdb_sql)))
        except duckdb.InterruptException:
            raise StatementFailed(None, f"The statement was stopped: {self._stopped_because}.") from None
        except duckdb.Error as error:
            raise StatementFailed(None, f"The local SQL warehouse's engine (DuckDB) could not run the statement: {self._engine_message(error)}") from None
        except (ValueError, OverflowError) as error:  # a value DuckDB produced that Python cannot hold (a date past year 9999)
            raise StatementFailed(None, f"The result holds a value the local SQL warehouse cannot return: {str(error)[:200]}") from None
        finally:
            finished.set()
            with self._lock:
                self._database.close()
                self._database = None

    def _stop(self, because: str) -> None:
        with self._lock:
            self._stopped_because = self._stopped_because or because
            if self._database is not None:
                self._database.interrupt()

    def _watch(self, finished: threading.Event, deadline: float) -> None:
        """Stops the run at the deadline, and interrupts a stopped run until it ends: DuckDB
        forgets an interrupt that comes before its query has started."""
        while not finished.wait(_WATCH_SECONDS):
            if time.monotonic() >= deadline:
                self._stop(f"it ran longer than the local SQL warehouse's limit of {STATEMENT_TIME_LIMIT_SECONDS:g} seconds")
            with self._lock:
                if self._stopped_because and self._database is not None:
                    self._database.interrupt()

    def _fetch(self, cursor: duckdb.DuckDBPyConnection) -> Result:
        columns = [_column(name, kind, position) for position, (name, kind, *_) in enumerate(cursor.description or ())]
        chunks: list[Chunk] = []
        rows: list[list[str | None]] = []
        row_count = byte_count = chunk_bytes = 0
        truncated = False
        while batch := cursor.fetchmany(_FETCH_ROWS):
            for values in batch:
                row = [_text(value) for value in values]
                size = len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode())  # as sent
                if (self._row_limit is not None and row_count >= self._row_limit) or (
                    self._byte_limit is not None and byte_count + size > self._byte_limit
                ):
                    truncated = True
                    break
                if byte_count + size > INLINE_LIMIT_BYTES:
                    raise StatementFailed(
                        None,
                        f"The result is larger than the {INLINE_LIMIT_BYTES // (1024 * 1024)} MiB the INLINE disposition allows; "
                        "select fewer rows or columns, or set row_limit or byte_limit.",
                    )
                rows.append(row)
                row_count, byte_count, chunk_bytes = row_count + 1, byte_count + size, chunk_bytes + size
                if chunk_bytes >= CHUNK_BYTES:
                    chunks.append(Chunk(len(chunks), row_count - len(rows), rows))
                    rows, chunk_bytes = [], 0
            if truncated:
                break
        if rows or not chunks:
            chunks.append(Chunk(len(chunks), row_count - len(rows), rows))
        return Result(columns, chunks, row_count, byte_count, truncated)

    def _engine_message(self, error: duckdb.Error) -> str:
        """DuckDB's message without the engine's SQL (LINE ... and its caret) or its guesses,
        and with the tables' names where it names the views that hold them."""
        lines = [
            line
            for line in str(error).strip().splitlines()
            if line.strip() and not line.startswith("LINE ") and not line.strip().startswith("^") and not line.startswith("Did you mean")
        ]
        message = " ".join(lines)[:1000] or type(error).__name__
        return _VIEW_NAME.sub(lambda match: self._compiled.tables.get(match.group(0).strip('"'), "a table"), message)


def _column(name: str, kind: Any, position: int) -> Column:
    type_name, type_text = _type(kind)
    if kind.id == "decimal":
        precision, scale = (value for _, value in kind.children)
        return Column(name, type_name, type_text, position, precision, scale)
    return Column(name, type_name, type_text, position)


def _type(kind: Any) -> tuple[str, str]:
    """DuckDB's type (a DuckDBPyType) as the platform's (type_name, type_text)."""
    if kind.id in _TYPES:
        return _TYPES[kind.id]
    if kind.id in _WIDE_INTEGERS:
        return "DECIMAL", f"decimal({_WIDE_INTEGERS[kind.id]},0)"
    if kind.id == "decimal":
        precision, scale = (value for _, value in kind.children)
        return "DECIMAL", f"decimal({precision},{scale})"
    if kind.id in ("list", "array"):
        return "ARRAY", f"array<{_type(kind.children[0][1])[1]}>"
    if kind.id == "struct":
        return "STRUCT", "struct<" + ",".join(f"{name}:{_type(child)[1]}" for name, child in kind.children) + ">"
    if kind.id == "map":
        (_, key), (_, value) = kind.children[:2]
        return "MAP", f"map<{_type(key)[1]},{_type(value)[1]}>"
    return "STRING", "string"  # UUID, TIME, enums, ...: sent as their text


def _text(value: Any) -> str | None:
    """A value as JSON_ARRAY sends it: its text, or None for SQL NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _double(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="milliseconds")
        return value.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_json(value), ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _double(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _json(value: Any) -> Any:
    """A nested value (ARRAY, STRUCT, MAP) as JSON: numbers and booleans as themselves, the rest as their text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _double(value)
    if isinstance(value, dict):
        return {str(_text(key)): _json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]
    return _text(value)


def _one_query(sql: str) -> str:
    """``sql`` if DuckDB reads it as exactly one query: the compiled text is run only if the
    engine agrees with sqlglot about what it is (a fragment sqlglot writes out raw must not
    turn it into several statements, or into a write)."""
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise StatementFailed(None, "The statement compiled to something other than one query; the local SQL warehouse does not run it.")
    return sql
