"""Schema defaults and Python type hints of fields, as text for the emitters.

Why separate: both the decoder (absent fields take their default) and the encoder (a
request field absent in a version must still hold its default) and the class emitter
(constructor signatures) need the same reading of the schema's "default" strings.
"""
from __future__ import annotations

from typing import Any

from .schema import INT_TYPES, Field

def default_value(f: Field) -> Any:
    """The Python value of a field's schema default (None for null)."""
    d = f.default
    if f.is_array or f.struct is not None:
        return None if d == "null" else "FRESH"
    t = f.type
    if d == "null":
        return None
    if t in INT_TYPES:
        return 0 if d is None else int(d, 0) if isinstance(d, str) else int(d)
    if t == "bool":
        return d is True or d == "true"
    if t == "float64":
        return 0.0 if d is None else float(d)
    if t == "string":
        return "" if d is None else str(d)
    if t == "bytes":
        return b""
    if t == "uuid":
        return b"\0" * 16
    if t == "records":
        return None
    raise ValueError(f"unknown type {t}")


def default_expr(f: Field) -> str:
    """Expression producing a fresh default value."""
    v = default_value(f)
    if v == "FRESH":
        return "[]" if f.is_array else f"{f.struct.cls}()"
    return repr(v)


def py_type(f: Field) -> str:
    base = {
        "string": "str", "bytes": "bytes", "records": "Any", "bool": "bool",
        "float64": "float", "uuid": "bytes",
    }.get(f.elem, "int" if f.elem in INT_TYPES else None)
    if base is None:
        base = f'"{f.struct.cls}"'
        if f.is_array:
            base = f'"list[{f.struct.cls}]"'
    elif f.is_array:
        base = f"list[{base}]"
    nullable = f.nullable.lo <= f.nullable.hi or default_value(f) is None
    return f"{base} | None" if nullable and not base.startswith('"') else base
