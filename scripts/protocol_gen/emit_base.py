"""Shared state of one generated module's emitters: struct formats, emitted functions.

Functions are generated lazily per (struct, version) and shared between versions whose
function text is identical, so versions with one layout get one function. The decode and
encode emitters (emit_decode.py, emit_encode.py) both build on this state.
"""
from __future__ import annotations

from .schema import MessageDef, StructDef, Versions


class EmitterBase:
    """State and helpers common to the decode and encode emitters of one module."""

    def __init__(self, msgs: list[MessageDef]) -> None:
        self.msgs = msgs  # the request and response of one API
        self.structs_fmt: dict[str, str] = {}  # struct format -> module-level Struct name
        self.funcs: list[str] = []  # emitted function texts, in emission order
        self.text_to_name: dict[str, str] = {}  # function text -> name (dedup across versions)
        self.dec: dict[tuple[str, int], str] = {}  # (class, version) -> decode function
        self.enc: dict[tuple[str, int], str] = {}  # (class, version) -> encode function
        self.has_records: dict[str, bool] = {}  # class -> a records field somewhere below
        self.mode: dict[str, str] = {}  # class -> "request" | "response"
        self.flex: dict[str, Versions] = {}  # class -> its message's flexible versions
        self.isdef: dict[str, str] = {}  # predicate name -> text (see EncodeEmitter)

    def sname(self, fmt: str) -> str:
        """Name of the shared module-level Struct for a format, registering it on first use."""
        if fmt not in self.structs_fmt:
            self.structs_fmt[fmt] = "_S_" + fmt.replace("16s", "u").replace("?", "o")
        return self.structs_fmt[fmt]

    def records_in(self, sd: StructDef) -> bool:
        """Whether a records field sits in this struct or below (its encoder then takes the
        output chunk list, so large record batches go out as their own chunk, uncopied)."""
        if sd.cls not in self.has_records:
            self.has_records[sd.cls] = any(
                f.elem == "records" or (f.struct is not None and self.records_in(f.struct))
                for f in sd.fields
            )
        return self.has_records[sd.cls]

    def add_func(self, kind: str, sd: StructDef, v: int, body: list[str], sig: str) -> str:
        """Register a function body; an identical earlier one is reused under its name."""
        text = "\n".join(body)
        key = f"{kind}|{sd.cls}|{sig}|{text}"
        name = self.text_to_name.get(key)
        if name is None:
            name = f"_{kind}_{sd.cls}_{v}"
            self.text_to_name[key] = name
            self.funcs.append(f"def {name}{sig}:\n" + text + "\n")
        return name
