"""Rows mapped by name: a record's dataclass fields are its table's columns.

A structured value (a dict, a list, a tuple of records) lives in a `<field>_json` column; every
other field is a column of its own name. Statements name their columns, so nothing depends on
the physical column order that `ALTER TABLE` leaves behind.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

import orjson

from proxy.storage.db import Row

R = TypeVar("R")
Fields = dict[str, Any]  # a decoded row: field name -> value
JSON_FIELDS = frozenset(
    {
        "request",
        "chat_messages",
        "sent_messages",
        "injected",
        "shadow",
        "response",
        "error",
        "categories",
        "dimensions",
        "metadata",
        "feedback_ids",
        "scopes",
        "apps",
        "span",
        "evidence",
    }
)
_FIELD_OF = {f"{name}_json": name for name in JSON_FIELDS}


def column(name: str) -> str:
    return f"{name}_json" if name in JSON_FIELDS else name


def columns(record_type: type[Any], *extra: str) -> list[str]:
    return [column(f.name) for f in fields(record_type)] + list(extra)


def column_list(record_type: type[Any], *extra: str) -> str:
    return ", ".join(columns(record_type, *extra))


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def to_row(record: Any, **extra: Any) -> dict[str, Any]:
    """Column -> value for `record` (a dataclass), JSON-encoding its structured fields."""
    row: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        row[column(f.name)] = dumps(value) if f.name in JSON_FIELDS and value is not None else value
    row.update(extra)
    return row


def insert(table: str, row: Mapping[str, Any], *, or_ignore: bool = False) -> str:
    """An INSERT naming each column of `row`, with named placeholders."""
    names = list(row)
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    return f"{verb} INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"


def decode(row: Row) -> Fields:
    """A fetched row as field -> value, with JSON columns decoded under their field names."""
    out: Fields = {}
    for key in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
        value = row[key]
        if key in _FIELD_OF:
            out[_FIELD_OF[key]] = orjson.loads(value) if value is not None else None
        else:
            out[key] = value
    return out


def to_record(record_type: type[R], row: Mapping[str, Any]) -> R:
    """Build `record_type` from a decoded row, JSON arrays back to tuples where the field is one."""
    values: dict[str, Any] = {}
    for f in fields(record_type):  # type: ignore[arg-type]
        value = row[f.name]
        if isinstance(value, list) and str(f.type).startswith("tuple"):
            value = tuple(value)
        values[f.name] = value
    return record_type(**values)


def records(record_type: type[R], rows: Iterable[Row]) -> list[R]:
    return [to_record(record_type, decode(r)) for r in rows]


def in_chunks(ids: Sequence[str], size: int = 500) -> Iterator[tuple[str, tuple[str, ...]]]:
    """`ids` in pieces small enough for one `IN (...)` each: (its placeholders, the piece)."""
    for start in range(0, len(ids), size):
        chunk = tuple(ids[start : start + size])
        yield ",".join("?" * len(chunk)), chunk


def encode_vector(vector: Sequence[float]) -> bytes:
    return array("f", vector).tobytes()


def decode_vector(blob: bytes) -> list[float]:
    values = array("f")
    values.frombytes(blob)
    return values.tolist()
