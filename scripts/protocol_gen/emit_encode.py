"""Emits the flat encode functions and the "is a fresh default" predicates they use.

Encoding a field that does not exist in the requested version: requests raise ValueError
when the value is not the default and the field is not "ignorable" (as Kafka does);
responses silently drop such fields, and write None in non-nullable fields as the empty
value, because broker handlers fill one response object for every version.
"""
from __future__ import annotations

from .defaults import default_value
from .emit_base import EmitterBase
from .schema import FIXED, Field, StructDef


class EncodeEmitter(EmitterBase):
    """Encode half of a module's code generator."""

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
