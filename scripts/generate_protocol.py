#!/usr/bin/env python3
"""Generate kafkapy's wire codec from Kafka's JSON message schemas.

Reads ``<schemas>/*Request.json`` / ``*Response.json`` (JSON with // comments) and writes
``kafkapy/protocol/messages/<snake_api>.py`` (request + response classes of one API) and
``kafkapy/protocol/messages/__init__.py``. Only names, types, versions and defaults are
carried over; the schemas' prose ("about") never reaches the output.

This file is the command-line entry point; the generator lives in scripts/protocol_gen/
(schema model and parser, defaults, decode/encode emitters, module renderer; see its
package docstring). Choices worth knowing are in the docstrings of those modules and in
kafkapy/protocol/_codec.py.

Usage: generate_protocol.py [--schemas DIR] [--out DIR] [--check]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run as a script (sys.path[0] is scripts/) or loaded by file path (tests/unit/protocol_oracle.py):
# either way the sibling package protocol_gen must be importable.
_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

# Re-exported: tests/unit/protocol_oracle.py uses the generator through this module.
from protocol_gen import (  # noqa: E402
    API_KEYS,
    Field,
    MessageDef,
    ModuleGen,
    StructDef,
    Versions,
    default_value,
    generate,
    load_apis,
    module_name,
    parse_message,
    snake,
    strip_comments,
)

ROOT = _HERE.parent
DEFAULT_SCHEMAS = ROOT.parent / "shared" / "reference" / "kafka-3.9-message-schemas"
DEFAULT_OUT = ROOT / "kafkapy" / "protocol" / "messages"

__all__ = [
    "API_KEYS", "DEFAULT_OUT", "DEFAULT_SCHEMAS", "Field", "MessageDef", "ModuleGen", "ROOT",
    "StructDef", "Versions", "default_value", "generate", "load_apis", "main", "module_name",
    "parse_message", "snake", "strip_comments",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="exit 1 if committed files differ")
    args = ap.parse_args(argv)
    files = generate(args.schemas)
    if args.check:
        stale = [n for n, t in files.items() if not (args.out / n).exists() or (args.out / n).read_text() != t]
        extra = [p.name for p in args.out.glob("*.py") if p.name not in files]
        for n in stale + extra:
            print(f"out of date: {args.out / n}", file=sys.stderr)
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for p in args.out.glob("*.py"):
        if p.name not in files:
            p.unlink()
    for n, t in files.items():
        (args.out / n).write_text(t)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
