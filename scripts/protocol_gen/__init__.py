"""kafkapy's protocol code generator, used by scripts/generate_protocol.py.

Turns Kafka's JSON message schemas into kafkapy/protocol/messages/*.py. Modules:
  schema.py       schema model (Versions, Field, StructDef, MessageDef) and parser
  defaults.py     schema defaults and type hints of fields, as Python source text
  emit_base.py    per-module emitter state: shared Structs, deduplicated functions
  emit_decode.py  flat decode functions per struct and layout
  emit_encode.py  flat encode functions, version checks of request fields
  module.py       ModuleGen (classes + tables of one API module), render_init, generate
Independent of kafkapy itself (see kafkapy/protocol/_codec.py for the runtime half).
"""
from __future__ import annotations

from .defaults import default_expr, default_value, py_type
from .module import HEADER, ModuleGen, generate, render_init
from .schema import (
    API_KEYS,
    FIXED,
    INT_TYPES,
    PRIMITIVES,
    Field,
    MessageDef,
    StructDef,
    Versions,
    load_apis,
    load_json,
    module_name,
    parse_message,
    snake,
    strip_comments,
)

__all__ = [
    "API_KEYS", "FIXED", "HEADER", "INT_TYPES", "PRIMITIVES", "Field", "MessageDef",
    "ModuleGen", "StructDef", "Versions", "default_expr", "default_value", "generate",
    "load_apis", "load_json", "module_name", "parse_message", "py_type", "render_init",
    "snake", "strip_comments",
]
