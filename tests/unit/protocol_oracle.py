"""Test helpers: the generator's schema model, random instances, and kio 0.5.0 as an oracle.

kio is imported only here (tests), never by kafkapy itself.
"""
from __future__ import annotations

import dataclasses
import datetime
import enum
import importlib
import importlib.util
import random
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_generator() -> Any:
    name = "kafkapy_generate_protocol"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "generate_protocol.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


gen = load_generator()
APIS = gen.load_apis(gen.DEFAULT_SCHEMAS)


def our_module(req: Any) -> Any:
    return importlib.import_module(f"kafkapy.protocol.messages.{gen.module_name(req)}")


def kio_module(req: Any, msg: Any, version: int) -> Any:
    return importlib.import_module(
        f"kio.schema.{gen.module_name(req)}.v{version}.{msg.kind}"
    )


def present(f: Any, v: int, flex: bool) -> bool:
    return f.regular_in(v) or (flex and f.tagged_in(v))


# ------------------------------------------------------------------ random instances

INT_RANGES = {"int8": 7, "int16": 15, "int32": 31, "int64": 63}
KIO_ERROR_CODES: list[int] = []


def _kio_error_codes() -> list[int]:
    if not KIO_ERROR_CODES:
        from kio.schema.errors import ErrorCode

        KIO_ERROR_CODES.extend(int(e.value) for e in ErrorCode)
    return KIO_ERROR_CODES


def rand_str(rng: random.Random) -> str:
    alphabet = "abcXYZ-_.09 é€😀"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def rand_prim(rng: random.Random, t: str, kio_type: str | None) -> Any:
    if kio_type == "error_code":
        return rng.choice(_kio_error_codes())
    if kio_type in ("timedelta_i32", "timedelta_i64"):
        return rng.choice([0, 1, 30000, rng.randint(0, 2**31 - 1)])
    if kio_type == "datetime_i64":
        return rng.choice([0, 1_700_000_000_000, rng.randint(0, 4_000_000_000) * 1000])  # kio keeps whole seconds exactly
    if t in INT_RANGES:
        bits = INT_RANGES[t]
        return rng.choice([0, -1, 1, -(2**bits), 2**bits - 1, rng.randint(-(2**bits), 2**bits - 1)])
    if t == "uint16":
        return rng.choice([0, 65535, rng.randint(0, 65535)])
    if t == "bool":
        return rng.random() < 0.5
    if t == "float64":
        return rng.choice([0.0, 1.5, -2.25, rng.random() * 1e6])
    if t == "string":
        return rand_str(rng)
    if t in ("bytes", "records"):
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20)))
    if t == "uuid":
        return b"\0" * 16 if rng.random() < 0.3 else rng.randbytes(16)
    raise AssertionError(t)


def make(sd: Any, v: int, flex: bool, mod: Any, kmod: Any, rng: random.Random, depth: int = 0) -> Any:
    """A random instance of our class for struct `sd` at version `v`, with values that kio
    can represent (kio maps some ints to enums/timedelta/datetime)."""
    kcls = getattr(kmod, sd.name) if kmod is not None else None
    kfields = {}
    if kcls is not None:
        kf = [f for f in dataclasses.fields(kcls)]
        ours = [f for f in sd.fields if present(f, v, flex)]
        assert len(kf) == len(ours), (sd.cls, v, [f.name for f in kf], [f.py for f in ours])
        kfields = {o.py: k for o, k in zip(ours, kf)}
    kwargs: dict[str, Any] = {}
    for f in sd.fields:
        if not present(f, v, flex):
            continue
        if f.tagged_in(v) and rng.random() < 0.4:
            continue  # leave at default: must not be written
        nullable = v in f.nullable
        if nullable and rng.random() < 0.25:
            kwargs[f.py] = None
            continue
        kt = kfields[f.py].metadata.get("kafka_type") if f.py in kfields else None
        if f.is_array:
            n = rng.randint(0, 3 if depth < 2 else 1)
            if f.struct is not None:
                kwargs[f.py] = [make(f.struct, v, flex, mod, kmod, rng, depth + 1) for _ in range(n)]
            else:
                kwargs[f.py] = [rand_prim(rng, f.elem, kt) for _ in range(n)]
        elif f.struct is not None:
            kwargs[f.py] = make(f.struct, v, flex, mod, kmod, rng, depth + 1)
        else:
            kwargs[f.py] = rand_prim(rng, f.type, kt)
    return getattr(mod, sd.cls)(**kwargs)


# ------------------------------------------------------------------ comparison


def norm_ours(obj: Any, sd: Any, v: int, flex: bool) -> Any:
    if obj is None:
        return None
    out = []
    for f in sd.fields:
        if not present(f, v, flex):
            continue
        val = getattr(obj, f.py)
        if f.struct is not None:
            if f.is_array:
                val = None if val is None else [norm_ours(e, f.struct, v, flex) for e in val]
            else:
                val = norm_ours(val, f.struct, v, flex)
        elif f.elem == "uuid":
            z = lambda u: None if u == b"\0" * 16 else bytes(u)  # noqa: E731
            val = [z(u) for u in val] if f.is_array and val is not None else z(val) if not f.is_array else None
        elif f.elem in ("bytes", "records") and val is not None:
            val = bytes(val)
        elif f.is_array and val is not None:
            val = list(val)
        out.append(val)
    return out


def norm_kio(val: Any) -> Any:
    if dataclasses.is_dataclass(val):
        return [norm_kio(getattr(val, f.name)) for f in dataclasses.fields(val)]
    if isinstance(val, tuple):
        return [norm_kio(e) for e in val]
    if isinstance(val, datetime.timedelta):
        return val // datetime.timedelta(milliseconds=1)
    if isinstance(val, datetime.datetime):
        return round(val.timestamp() * 1000)
    if isinstance(val, enum.Enum):
        return norm_kio(val.value)
    if isinstance(val, uuid.UUID):
        return val.bytes
    if isinstance(val, bool):
        return val
    if isinstance(val, int):
        return int(val)
    if isinstance(val, float):
        return float(val)
    if isinstance(val, str):
        return str(val)
    if isinstance(val, (bytes, bytearray, memoryview)):
        return bytes(val)
    return val


def encode(obj: Any, version: int) -> bytes:
    out: list = []
    obj.encode(version, out)
    return b"".join(bytes(c) if not isinstance(c, (bytes, bytearray)) else c for c in out)


def message_versions() -> list[tuple[int, str, int]]:
    """(api_key, kind, version) for every generated message version."""
    items = []
    for key, pair in APIS.items():
        for msg in pair:
            for v in range(msg.valid.lo, msg.valid.hi + 1):
                items.append((key, msg.kind, v))
    return items
