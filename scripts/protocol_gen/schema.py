"""The schema model and parser: Kafka's JSON message schemas as plain Python objects.

Owns the version-range syntax (Versions), the field/struct/message model, the JSON-with-//
comments reader, snake_case naming, and which API keys kafkapy implements (API_KEYS).
Only names, types, versions and defaults are read; the schemas' prose ("about") is dropped
here, so it can never reach the generated code.
"""
from __future__ import annotations

import json
import keyword
import re
from pathlib import Path
from typing import Any

import attrs

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
    """One field of a struct and the version ranges where it exists, is nullable, is tagged."""

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
    """A struct (the message root, an inline struct or a common struct); cls is its Python
    class name, prefixed by the message name so request and response structs never clash."""

    name: str
    cls: str
    fields: list[Field]
    children: list[StructDef] = attrs.Factory(list)


@attrs.define(slots=True)
class MessageDef:
    """One request or response schema, parsed."""

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
    """snake_case of a schema name; keywords and encode/decode get a trailing underscore."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    return s + "_" if keyword.iskeyword(s) or s in ("encode", "decode") else s


def load_json(path: Path) -> dict:
    """A schema file: JSON with // comments."""
    return json.loads(strip_comments(path.read_text()))


def parse_message(spec: dict) -> MessageDef:
    """The model of one schema; structs are listed children before parents, root last."""
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
    """(request, response) per implemented API key, in key order."""
    found: dict[int, dict[str, MessageDef]] = {}
    for path in sorted(schemas.glob("*.json")):
        spec = load_json(path)
        if spec.get("type") not in ("request", "response") or spec.get("apiKey") not in API_KEYS:
            continue
        msg = parse_message(spec)
        found.setdefault(msg.api_key, {})[msg.kind] = msg
    return {k: (found[k]["request"], found[k]["response"]) for k in sorted(found)}


def module_name(req: MessageDef) -> str:
    """Generated module of an API: ProduceRequest -> produce."""
    return snake(req.name[: -len("Request")])
