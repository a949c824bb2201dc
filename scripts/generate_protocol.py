#!/usr/bin/env python3
"""Generate kafkapy's wire codec from Kafka's JSON message schemas.

Reads ``<schemas>/*Request.json`` / ``*Response.json`` (JSON with // comments) and writes
``kafkapy/protocol/messages/<snake_api>.py`` (request + response classes of one API) and
``kafkapy/protocol/messages/__init__.py``. Only names, types, versions and defaults are
carried over; the schemas' prose ("about") never reaches the output.

Generated code shape (why: speed on the produce/fetch hot path): every struct gets one flat
decode and one flat encode function per *distinct layout* (versions with identical layouts
share a function), dispatched through a tuple indexed by version. Runs of fixed-width fields
are one precompiled ``struct.Struct``. Nested structs call their children's functions for the
same version directly, with no dispatch.

Choices worth knowing (see also kafkapy/protocol/_codec.py):
* Encoding a field that does not exist in the requested version: requests raise ValueError
  when the value is not the default and the field is not "ignorable" (as Kafka does);
  responses silently drop such fields, and write None in non-nullable fields as the empty
  value, because broker handlers fill one response object for every version.
* "mapKey" only matters to Java's generated maps; arrays are plain lists here.
* "bytes" fields decode to bytes (copied); "records" and "zeroCopy" bytes fields decode to
  memoryview slices of the request buffer. Uuids are 16-byte bytes.

Usage: generate_protocol.py [--schemas DIR] [--out DIR] [--check]
"""
from __future__ import annotations

import argparse
import json
import keyword
import re
import sys
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMAS = ROOT.parent / "shared" / "reference" / "kafka-3.9-message-schemas"
DEFAULT_OUT = ROOT / "kafkapy" / "protocol" / "messages"

API_KEYS: tuple[int, ...] = (
    tuple(range(0, 38)) + tuple(range(42, 52)) + (56, 57, 60, 61, 65, 66, 67)
)

FIXED: dict[str, tuple[str, int]] = {
    "int8": ("b", 1),
    "int16": ("h", 2),
    "int32": ("i", 4),
    "int64": ("q", 8),
    "uint16": ("H", 2),
    "float64": ("d", 8),
    "bool": ("?", 1),
    "uuid": ("16s", 16),
}
INT_TYPES = {"int8", "int16", "int32", "int64", "uint16"}
PRIMITIVES = set(FIXED) | {"string", "bytes", "records"}

# ----------------------------------------------------------------------------- model


@attrs.define(slots=True, frozen=True)
class Versions:
    """A version range from the schema syntax ("3+", "0-2", "5", "none")."""

    lo: int
    hi: int  # inclusive; 1 << 15 for open-ended

    @classmethod
    def parse(cls, text: str | None) -> Versions:
        if text is None or text == "none":
            return cls(1, 0)
        text = text.strip()
        if text.endswith("+"):
            return cls(int(text[:-1]), 1 << 15)
        if "-" in text:
            a, b = text.split("-")
            return cls(int(a), int(b))
        return cls(int(text), int(text))

    def __contains__(self, v: int) -> bool:
        return self.lo <= v <= self.hi


@attrs.define(slots=True)
class Field:
    name: str
    py: str
    type: str  # raw schema type ("int32", "[]string", "[]Topic", "Topic")
    versions: Versions
    nullable: Versions
    tagged: Versions
    tag: int | None
    default: Any
    ignorable: bool
    zero_copy: bool
    struct: StructDef | None = None

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def elem(self) -> str:
        return self.type[2:] if self.is_array else self.type

    def regular_in(self, v: int) -> bool:
        return v in self.versions and v not in self.tagged

    def tagged_in(self, v: int) -> bool:
        return v in self.versions and v in self.tagged


@attrs.define(slots=True)
class StructDef:
    name: str
    cls: str
    fields: list[Field]
    children: list[StructDef] = attrs.Factory(list)


@attrs.define(slots=True)
class MessageDef:
    name: str
    api_key: int
    kind: str  # "request" | "response"
    valid: Versions
    flexible: Versions
    root: StructDef
    structs: list[StructDef]  # every struct incl. root, definition order


def strip_comments(text: str) -> str:
    """Remove // comments outside JSON strings."""
    out: list[str] = []
    i, n, in_str = 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def snake(name: str) -> str:
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    return s + "_" if keyword.iskeyword(s) or s in ("encode", "decode") else s


def load_json(path: Path) -> dict:
    return json.loads(strip_comments(path.read_text()))


def parse_message(spec: dict) -> MessageDef:
    name = spec["name"]
    common_specs = {c["name"]: c for c in spec.get("commonStructs", [])}
    structs: list[StructDef] = []
    by_name: dict[str, StructDef] = {}

    def struct_of(sname: str, fields_spec: list[dict] | None) -> StructDef:
        if fields_spec is None:
            if sname in by_name:
                return by_name[sname]
            fields_spec = common_specs[sname]["fields"]
        if sname in by_name:
            raise ValueError(f"{name}: struct {sname} defined twice")
        sd = StructDef(sname, f"{name}_{sname}", [])
        by_name[sname] = sd
        sd.fields = [field_of(f, sd) for f in fields_spec]
        structs.append(sd)
        return sd

    def field_of(f: dict, parent: StructDef) -> Field:
        fld = Field(
            name=f["name"],
            py=snake(f["name"]),
            type=f["type"],
            versions=Versions.parse(f.get("versions")),
            nullable=Versions.parse(f.get("nullableVersions")),
            tagged=Versions.parse(f.get("taggedVersions")),
            tag=f.get("tag"),
            default=f.get("default"),
            ignorable=bool(f.get("ignorable", False)),
            zero_copy=bool(f.get("zeroCopy", False)),
        )
        if fld.elem not in PRIMITIVES:
            fld.struct = struct_of(fld.elem, f.get("fields"))
            parent.children.append(fld.struct)
        return fld

    root = StructDef(name, name, [])
    by_name[name] = root
    root.fields = [field_of(f, root) for f in spec.get("fields", [])]
    structs.append(root)
    return MessageDef(
        name=name,
        api_key=spec["apiKey"],
        kind=spec["type"],
        valid=Versions.parse(spec["validVersions"]),
        flexible=Versions.parse(spec["flexibleVersions"]),
        root=root,
        structs=structs,
    )


def load_apis(schemas: Path) -> dict[int, tuple[MessageDef, MessageDef]]:
    found: dict[int, dict[str, MessageDef]] = {}
    for path in sorted(schemas.glob("*.json")):
        spec = load_json(path)
        if spec.get("type") not in ("request", "response") or spec.get("apiKey") not in API_KEYS:
            continue
        msg = parse_message(spec)
        found.setdefault(msg.api_key, {})[msg.kind] = msg
    return {k: (found[k]["request"], found[k]["response"]) for k in sorted(found)}


def module_name(req: MessageDef) -> str:
    return snake(req.name[: -len("Request")])


# ----------------------------------------------------------------------------- defaults


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


# ----------------------------------------------------------------------------- codegen


class ModuleGen:
    """Emits one module; functions are generated lazily per (struct, version) and shared
    between versions with identical text."""

    def __init__(self, msgs: list[MessageDef]) -> None:
        self.msgs = msgs
        self.structs_fmt: dict[str, str] = {}
        self.funcs: list[str] = []
        self.text_to_name: dict[str, str] = {}
        self.dec: dict[tuple[str, int], str] = {}
        self.enc: dict[tuple[str, int], str] = {}
        self.has_records: dict[str, bool] = {}
        self.mode: dict[str, str] = {}
        self.flex: dict[str, Versions] = {}
        self.isdef: dict[str, str] = {}

    # ---- helpers
    def sname(self, fmt: str) -> str:
        if fmt not in self.structs_fmt:
            self.structs_fmt[fmt] = "_S_" + fmt.replace("16s", "u").replace("?", "o")
        return self.structs_fmt[fmt]

    def records_in(self, sd: StructDef) -> bool:
        if sd.cls not in self.has_records:
            self.has_records[sd.cls] = any(
                f.elem == "records" or (f.struct is not None and self.records_in(f.struct))
                for f in sd.fields
            )
        return self.has_records[sd.cls]

    def add_func(self, kind: str, sd: StructDef, v: int, body: list[str], sig: str) -> str:
        text = "\n".join(body)
        key = f"{kind}|{sd.cls}|{sig}|{text}"
        name = self.text_to_name.get(key)
        if name is None:
            name = f"_{kind}_{sd.cls}_{v}"
            self.text_to_name[key] = name
            self.funcs.append(f"def {name}{sig}:\n" + text + "\n")
        return name

    # ---- decode
    def dec_fn(self, sd: StructDef, v: int) -> str:
        key = (sd.cls, v)
        if key not in self.dec:
            self.dec[key] = self._gen_dec(sd, v)
        return self.dec[key]

    def _gen_dec(self, sd: StructDef, v: int) -> str:
        flex = v in self.flex[sd.cls]
        L: list[str] = []
        run: list[Field] = []

        def flush() -> None:
            if not run:
                return
            fmt = "".join(FIXED[f.type][0] for f in run)
            size = sum(FIXED[f.type][1] for f in run)
            names = ", ".join(f"f_{f.py}" for f in run)
            L.append(f"    {names}, = {self.sname(fmt)}.unpack_from(buf, pos)")
            L.append(f"    pos += {size}")
            run.clear()

        for f in sd.fields:
            if not f.regular_in(v):
                continue
            if f.type in FIXED:
                run.append(f)
                continue
            flush()
            L.extend(self.dec_value(f, v, flex, f"f_{f.py}", "    "))
        flush()
        tagged = sorted((f for f in sd.fields if f.tagged_in(v)), key=lambda f: f.tag)
        if flex:
            for f in tagged:
                L.append(f"    f_{f.py} = {default_expr(f)}")
            if not tagged:
                # common case: no tags known at this version; skip whatever is there
                L.append("    if buf[pos]:")
                L.append("        pos = _skiptags(buf, pos)")
                L.append("    else:")
                L.append("        pos += 1")
            else:
                L.append("    if not buf[pos]:")
                L.append("        pos += 1")
                L.append("    else:")
                L.append("      nt, pos = _ruv(buf, pos)")
                L.append("      for _ in range(nt):")
                L.append("        tag, pos = _ruv(buf, pos)")
                L.append("        sz, pos = _ruv(buf, pos)")
                L.append("        end = _skip(buf, pos, sz)")
                kw = "if"
                for f in tagged:
                    L.append(f"        {kw} tag == {f.tag}:")
                    if f.type in FIXED:
                        fmt = FIXED[f.type][0]
                        L.append(f"            f_{f.py}, = {self.sname(fmt)}.unpack_from(buf, pos)")
                        L.append(f"            pos += {FIXED[f.type][1]}")
                    else:
                        L.extend(self.dec_value(f, v, flex, f"f_{f.py}", "            "))
                    L.append("            if pos > end:")
                    L.append(f"                raise DecodeError('tagged field {f.py} overruns its size')")
                    kw = "elif"
                L.append("        pos = end")
        args = ", ".join(
            f"f_{f.py}" if (f.regular_in(v) or (flex and f.tagged_in(v))) else default_expr(f)
            for f in sd.fields
        )
        L.append(f"    return {sd.cls}({args}), pos")
        return self.add_func("d", sd, v, L, "(buf: memoryview, pos: int) -> tuple[Any, int]")

    def dec_value(self, f: Field, v: int, flex: bool, var: str, ind: str) -> list[str]:
        nullable = v in f.nullable
        L: list[str] = []
        if f.is_array:
            rd = "_rcal" if flex else "_ral"
            L.append(f"{ind}n, pos = {rd}(buf, pos)")
            L.append(f"{ind}if n < 0:")
            if nullable:
                L.append(f"{ind}    {var} = None")
            else:
                L.append(f"{ind}    raise DecodeError('non-nullable array {f.py} is null')")
            L.append(f"{ind}else:")
            e = f.elem
            if f.struct is not None:
                fn = self.dec_fn(f.struct, v)
                L.append(f"{ind}    {var} = []")
                L.append(f"{ind}    for _ in range(n):")
                L.append(f"{ind}        e, pos = {fn}(buf, pos)")
                L.append(f"{ind}        {var}.append(e)")
            elif e == "uuid":
                L.append(f"{ind}    {var}, pos = _ruuids(buf, pos, n)")
            elif e in FIXED:
                code, size = FIXED[e]
                L.append(f"{ind}    {var}, pos = _rprim(buf, pos, n, {code!r}, {size})")
            elif e == "string":
                rs = "_rcstr" if flex else "_rstr"
                L.append(f"{ind}    {var} = []")
                L.append(f"{ind}    for _ in range(n):")
                L.append(f"{ind}        e, pos = {rs}(buf, pos)")
                L.append(f"{ind}        {var}.append(e)")
            else:
                raise ValueError(f"unsupported array element {e}")
            return L
        if f.struct is not None:
            fn = self.dec_fn(f.struct, v)
            if nullable:
                L.append(f"{ind}m, = _S_b.unpack_from(buf, pos)")
                L.append(f"{ind}pos += 1")
                L.append(f"{ind}if m < 0:")
                L.append(f"{ind}    {var} = None")
                L.append(f"{ind}else:")
                L.append(f"{ind}    {var}, pos = {fn}(buf, pos)")
                self.sname("b")
            else:
                L.append(f"{ind}{var}, pos = {fn}(buf, pos)")
            return L
        t = f.type
        if t == "string":
            fn = {(0, 0): "_rstr", (0, 1): "_rnstr", (1, 0): "_rcstr", (1, 1): "_rcnstr"}
            L.append(f"{ind}{var}, pos = {fn[int(flex), int(nullable)]}(buf, pos)")
            return L
        if t == "records" and flex:
            # inlined: one Produce request carries a records field per partition
            L.append(f"{ind}n = buf[pos]")
            L.append(f"{ind}if n < 0x80:")
            L.append(f"{ind}    pos += 1")
            L.append(f"{ind}else:")
            L.append(f"{ind}    n, pos = _ruv(buf, pos)")
            L.append(f"{ind}if n:")
            L.append(f"{ind}    end = pos + n - 1")
            L.append(f"{ind}    if end > len(buf):")
            L.append(f"{ind}        raise DecodeError(f'records of {{n - 1}} bytes overrun the buffer')")
            L.append(f"{ind}    {var} = buf[pos:end]")
            L.append(f"{ind}    pos = end")
            L.append(f"{ind}else:")
            L.append(f"{ind}    {var} = None")
        elif t in ("bytes", "records"):
            L.append(f"{ind}{var}, pos = {'_rcbytes' if flex else '_rbytes'}(buf, pos)")
        if t in ("bytes", "records"):
            if not nullable:
                L.append(f"{ind}if {var} is None:")
                L.append(f"{ind}    raise DecodeError('non-nullable field {f.py} is null')")
            if t == "bytes" and not f.zero_copy:
                L.append(f"{ind}{var} = _copy({var})")
            return L
        raise ValueError(f"unsupported type {t}")

    # ---- encode
    def enc_fn(self, sd: StructDef, v: int) -> str:
        key = (sd.cls, v)
        if key not in self.enc:
            self.enc[key] = self._gen_enc(sd, v)
        return self.enc[key]

    def enc_call(self, sd: StructDef, v: int, val: str, ind: str) -> str:
        fn = self.enc_fn(sd, v)
        if self.records_in(sd):
            return f"{ind}w = {fn}({val}, out, w)"
        return f"{ind}{fn}({val}, w)"

    def _gen_enc(self, sd: StructDef, v: int) -> str:
        flex = v in self.flex[sd.cls]
        strict = self.mode[sd.cls] == "request"
        L: list[str] = []
        run: list[Field] = []

        def flush() -> None:
            if not run:
                return
            fmt = "".join(FIXED[f.type][0] for f in run)
            args = ", ".join(f"o.{f.py}" for f in run)
            L.append(f"    w += {self.sname(fmt)}.pack({args})")
            run.clear()

        for f in sd.fields:
            present = f.regular_in(v) or (flex and f.tagged_in(v))
            if not present and strict and not f.ignorable:
                L.extend(self.nondefault_check(f, "    "))
                L.append(
                    f"        raise ValueError('{sd.cls}.{f.py} is not supported in version {v}')"
                )
        for f in sd.fields:
            if not f.regular_in(v):
                continue
            if f.type in FIXED:
                run.append(f)
                continue
            flush()
            L.extend(self.enc_value(f, v, flex, f"o.{f.py}", "    ", strict))
        flush()
        if flex:
            tagged = sorted((f for f in sd.fields if f.tagged_in(v)), key=lambda f: f.tag)
            if not tagged:
                L.append("    w.append(0)")
            else:
                L.append("    tags = []")
                for f in tagged:
                    if f.elem == "records" or (f.struct is not None and self.records_in(f.struct)):
                        raise ValueError(f"{sd.cls}.{f.py}: tagged records are not supported")
                    L.extend(self.nondefault_check(f, "    "))
                    L.append("        outer, w = w, bytearray()")
                    if f.type in FIXED:
                        L.append(f"        w += {self.sname(FIXED[f.type][0])}.pack(o.{f.py})")
                    else:
                        L.extend(self.enc_value(f, v, flex, f"o.{f.py}", "        ", strict))
                    L.append(f"        tags.append(({f.tag}, w))")
                    L.append("        w = outer")
                L.append("    if tags:")
                L.append("        _wtags(w, tags)")
                L.append("    else:")
                L.append("        w.append(0)")
        if self.records_in(sd):
            L.append("    return w")
            sig = "(o: Any, out: list, w: bytearray) -> bytearray"
        else:
            sig = "(o: Any, w: bytearray) -> None"
            if not L:
                L.append("    pass")
        return self.add_func("e", sd, v, L, sig)

    def nondefault_check(self, f: Field, ind: str) -> list[str]:
        d = default_value(f)
        if d == "FRESH":
            if f.is_array:
                return [f"{ind}if o.{f.py} is None or o.{f.py}:"]
            return [f"{ind}if not ({self.isdef_expr(f.struct, f'o.{f.py}')}):"]
        if d is None:
            return [f"{ind}if o.{f.py} is not None:"]
        return [f"{ind}if o.{f.py} != {d!r}:"]

    def enc_value(
        self, f: Field, v: int, flex: bool, val: str, ind: str, strict: bool
    ) -> list[str]:
        """Encode one field value. `strict` (requests): None in a non-nullable version is a
        ValueError, as in Kafka. Responses are lenient so handlers can fill fields
        generically: None there is written as the empty value ("", [], b"", default
        struct)."""
        nullable = v in f.nullable
        L: list[str] = []
        if f.is_array:
            L.append(f"{ind}a = {val}")
            if not nullable:
                L.append(f"{ind}if a is None:")
                if strict:
                    L.append(f"{ind}    raise ValueError('non-nullable array {f.py} is None')")
                else:
                    L.append(f"{ind}    a = ()")
            L.append(f"{ind}{'_wcal' if flex else '_wal'}(w, a)")
            e = f.elem
            if f.struct is not None:
                L.append(f"{ind}if a:")
                L.append(f"{ind}    for e in a:")
                L.append(self.enc_call(f.struct, v, "e", ind + "        "))
            elif e == "uuid":
                L.append(f"{ind}if a:")
                L.append(f"{ind}    for e in a:")
                L.append(f"{ind}        _wuuid(w, e)")
            elif e in FIXED:
                code = FIXED[e][0]
                L.append(f"{ind}if a:")
                L.append(f"{ind}    w += _pack(f'>{{len(a)}}{code}', *a)")
            elif e == "string":
                ws = "_wcstr" if flex else "_wstr"
                L.append(f"{ind}if a:")
                L.append(f"{ind}    for e in a:")
                L.append(f"{ind}        {ws}(w, e)")
            return L
        if f.struct is not None:
            if nullable:
                L.append(f"{ind}if {val} is None:")
                L.append(f"{ind}    w += b'\\xff'")
                L.append(f"{ind}else:")
                L.append(f"{ind}    w += b'\\x01'")
                L.append(self.enc_call(f.struct, v, val, ind + "    "))
            elif strict:
                L.append(self.enc_call(f.struct, v, val, ind))
            else:
                L.append(f"{ind}if {val} is None:")
                L.append(self.enc_call(f.struct, v, f"{f.struct.cls}()", ind + "    "))
                L.append(f"{ind}else:")
                L.append(self.enc_call(f.struct, v, val, ind + "    "))
            return L
        t = f.type
        if not nullable and t in ("string", "bytes", "records"):
            if strict:
                L.append(f"{ind}if {val} is None:")
                L.append(f"{ind}    raise ValueError('non-nullable field {f.py} is None')")
            else:
                empty = '""' if t == "string" else 'b""'
                val = f"({val} if {val} is not None else {empty})"
        if t == "string":
            fn = {(0, 0): "_wstr", (0, 1): "_wnstr", (1, 0): "_wcstr", (1, 1): "_wcnstr"}
            L.append(f"{ind}{fn[int(flex), int(nullable)]}(w, {val})")
        elif t == "bytes":
            L.append(f"{ind}{'_wcbytes' if flex else '_wbytes'}(w, {val})")
        elif t == "records":
            L.append(f"{ind}w = _wrecords(out, w, {val}, {flex})")
        else:
            raise ValueError(f"unsupported type {t}")
        return L

    def isdef_expr(self, sd: StructDef, var: str) -> str:
        """Inline 'equals a fresh default instance' test for the encode hot path (Fetch
        responses carry three tagged structs per partition)."""
        conds = []
        for f in sd.fields:
            d = default_value(f)
            if d == "FRESH":
                if f.is_array:
                    conds.append(f"{var}.{f.py} == []")
                else:
                    conds.append(f"{self.isdef_fn(f.struct)}({var}.{f.py})")
            elif d is None:
                conds.append(f"{var}.{f.py} is None")
            else:
                conds.append(f"{var}.{f.py} == {d!r}")
        return " and ".join(conds) or "True"

    def isdef_fn(self, sd: StructDef) -> str:
        """Name of a generated predicate 'equals a freshly constructed default instance'
        (cheaper than building one and comparing on the encode path)."""
        name = f"_isdef_{sd.cls}"
        if name not in self.isdef:
            self.isdef[name] = ""
            conds = [f"type(o) is {sd.cls}"]
            for f in sd.fields:
                d = default_value(f)
                if d == "FRESH":
                    if f.is_array:
                        conds.append(f"o.{f.py} == []")
                    else:
                        conds.append(f"{self.isdef_fn(f.struct)}(o.{f.py})")
                elif d is None:
                    conds.append(f"o.{f.py} is None")
                else:
                    conds.append(f"o.{f.py} == {d!r}")
            body = " and\n            ".join(conds)
            self.isdef[name] = f"def {name}(o: Any) -> bool:\n    return (\n            {body}\n    )\n"
        return name

    # ---- classes
    def class_text(self, msg: MessageDef, sd: StructDef) -> str:
        L = [f"class {sd.cls}(Message):"]
        slots = ", ".join(repr(f.py) for f in sd.fields)
        L.append(f"    __slots__ = ({slots}{',' if len(sd.fields) == 1 else ''})")
        if sd is msg.root:
            L.append(f"    API_KEY = {msg.api_key}")
            L.append(f"    MIN_VERSION = {msg.valid.lo}")
            L.append(f"    MAX_VERSION = {msg.valid.hi}")
            fl = msg.flexible.lo if msg.flexible.lo <= msg.flexible.hi else None
            L.append(f"    FLEXIBLE_FROM = {fl}")
        L.append("")
        params = []
        body = []
        for f in sd.fields:
            d = default_value(f)
            if d == "FRESH":
                params.append(f"{f.py}: {py_type(f)} = NOARG")
                body.append(
                    f"        self.{f.py} = {default_expr(f)} if {f.py} is NOARG else {f.py}"
                )
            else:
                params.append(f"{f.py}: {py_type(f)} = {d!r}")
                body.append(f"        self.{f.py} = {f.py}")
        if params:
            L.append("    def __init__(")
            L.append("        self,")
            L.extend(f"        {p}," for p in params)
            L.append("    ) -> None:")
            L.extend(body)
        else:
            L.append("    def __init__(self) -> None:")
            L.append("        pass")
        return "\n".join(L) + "\n"

    def render(self) -> str:
        for msg in self.msgs:
            for sd in msg.structs:
                self.mode[sd.cls] = msg.kind
                self.flex[sd.cls] = msg.flexible
        for msg in self.msgs:
            for v in range(msg.valid.lo, msg.valid.hi + 1):
                self.dec_fn(msg.root, v)
                self.enc_fn(msg.root, v)
        parts = [HEADER]
        for msg in self.msgs:
            for sd in msg.structs:
                parts.append(self.class_text(msg, sd))
        alias = []
        for msg in self.msgs:
            for sd in msg.structs:
                if sd is not msg.root:
                    alias.append(f"{msg.root.cls}.{sd.name} = {sd.cls}  # type: ignore[attr-defined]")
                for child in sd.children:
                    if sd is not msg.root:
                        alias.append(f"{sd.cls}.{child.name} = {child.cls}  # type: ignore[attr-defined]")
        parts.append("\n".join(alias) + "\n" if alias else "")
        parts.append(
            "\n".join(f"{name} = Struct('>{fmt}')" for fmt, name in self.structs_fmt.items())
            + "\n"
        )
        parts.extend(self.funcs)
        parts.extend(self.isdef[k] for k in sorted(self.isdef))
        tables: list[str] = []
        for msg in self.msgs:
            for sd in msg.structs:
                for tbl, fns in (("D", self.dec), ("E", self.enc)):
                    hi = max((v for (c, v) in fns if c == sd.cls), default=-1)
                    items = [fns.get((sd.cls, v), "None") for v in range(hi + 1)]
                    tables.append(f"{sd.cls}._{tbl} = ({', '.join(items)}{',' if len(items) == 1 else ''})")
                if self.records_in(sd):
                    tables.append(f"{sd.cls}._R = True")
        parts.append("\n".join(tables) + "\n")
        return "\n\n".join(p.rstrip("\n") + "\n" for p in parts if p)


HEADER = '''"""Generated by scripts/generate_protocol.py from Kafka's message schemas. Do not edit."""
# ruff: noqa
# fmt: off
# mypy: ignore-errors
from __future__ import annotations

import struct
from struct import Struct
from typing import Any

from kafkapy.protocol._codec import (
    NOARG, DecodeError, Message,
    copy_bytes as _copy, read_uvarint as _ruv, skip_tag as _skip,
    read_string as _rstr, read_nullable_string as _rnstr,
    read_compact_string as _rcstr, read_compact_nullable_string as _rcnstr,
    read_bytes as _rbytes, read_compact_bytes as _rcbytes,
    read_array_len as _ral, read_compact_array_len as _rcal,
    read_prim_array as _rprim, read_uuid_array as _ruuids,
    write_string as _wstr, write_nullable_string as _wnstr,
    write_compact_string as _wcstr, write_compact_nullable_string as _wcnstr,
    write_bytes as _wbytes, write_compact_bytes as _wcbytes, write_records as _wrecords,
    write_array_len as _wal, write_compact_array_len as _wcal, write_uuid as _wuuid,
    write_tagged as _wtags, skip_tags as _skiptags,
)

_pack = struct.pack
'''


def render_init(apis: dict[int, tuple[MessageDef, MessageDef]]) -> str:
    L = [
        '"""Generated by scripts/generate_protocol.py: one module per API. Do not edit."""',
        "# ruff: noqa",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
    ]
    for key, (req, _resp) in apis.items():
        L.append(f"from kafkapy.protocol.messages import {module_name(req)}")
    L.append("")
    L.append("REQUESTS: dict[int, Any] = {")
    for key, (req, _resp) in apis.items():
        L.append(f"    {key}: {module_name(req)}.{req.name},")
    L.append("}")
    L.append("RESPONSES: dict[int, Any] = {")
    for key, (_req, resp) in apis.items():
        L.append(f"    {key}: {module_name(_req)}.{resp.name},")
    L.append("}")
    return "\n".join(L) + "\n"


def generate(schemas: Path) -> dict[str, str]:
    """File name -> text for every generated file."""
    apis = load_apis(schemas)
    missing = set(API_KEYS) - set(apis)
    if missing:
        raise SystemExit(f"schemas missing for api keys {sorted(missing)}")
    files = {"__init__.py": render_init(apis)}
    for key, (req, resp) in apis.items():
        files[f"{module_name(req)}.py"] = ModuleGen([req, resp]).render()
    return files


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
