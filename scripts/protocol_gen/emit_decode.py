"""Emits the flat decode functions: one per struct and distinct layout.

Runs of fixed-width fields are read with one precompiled ``struct.Struct``; nested structs
call their children's decoder for the same version directly, with no dispatch. "bytes"
fields decode to copied bytes; "records" and "zeroCopy" bytes fields to memoryview slices of
the request buffer.
"""
from __future__ import annotations

from .defaults import default_expr
from .emit_base import EmitterBase
from .schema import FIXED, Field, StructDef


class DecodeEmitter(EmitterBase):
    """Decode half of a module's code generator."""

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
