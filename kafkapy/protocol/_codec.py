"""Runtime helpers shared by the generated message modules (kafkapy/protocol/messages/).

The generated code inlines fixed-width fields as precompiled `struct.Struct` runs and calls
these small helpers for variable-width ones (strings, varints, array counts). Every reader
takes `(buf: memoryview, pos: int)` and returns `(value, new_pos)`; every length is checked
against the buffer so a malformed request surfaces as `DecodeError`, never as a silently
truncated slice.
"""
from __future__ import annotations

import struct
from typing import Any

from kafkapy.protocol.errors import DecodeError

__all__ = ["DecodeError", "Message", "NOARG"]

NOARG: Any = type("NoArg", (), {"__repr__": lambda self: "NOARG"})()
"""Constructor default for arrays/structs whose default is a fresh object per instance."""

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_UV1 = [bytes((i,)) for i in range(128)]
DECODE_FAILURES = (struct.error, IndexError, ValueError, OverflowError)
"""What a truncated or garbled buffer raises inside generated decoders (UnicodeDecodeError is
a ValueError); converted to DecodeError at the public entry point."""


class Message:
    """Base of every generated class: slot-wise equality and a readable repr."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        body = ", ".join(f"{s}={getattr(self, s)!r}" for s in self.__slots__)
        return f"{type(self).__name__}({body})"

    __hash__ = None  # type: ignore[assignment]

    # Filled in by the generated module: per-version decode/encode functions (None where the
    # version does not exist) and whether the encoder may emit separate record chunks.
    _D: tuple = ()
    _E: tuple = ()
    _R: bool = False

    @classmethod
    def decode(cls, buf: memoryview, pos: int, version: int) -> tuple[Any, int]:
        """Decode one instance at `pos`; returns it and the position after it.

        Bytes after the end are not an error here: Kafka's request parser reads the fields
        it knows and does not check for leftovers, so a caller that wants to be stricter
        compares the returned position with the frame length itself.
        """
        t = cls._D
        f = t[version] if 0 <= version < len(t) else None
        if f is None:
            raise ValueError(f"{cls.__name__} has no version {version}")
        try:
            return f(buf, pos)
        except DECODE_FAILURES as e:
            raise DecodeError(f"{cls.__name__} v{version}: {e}") from e

    def encode(self, version: int, out: list) -> None:
        """Append the encoding as bytes-like chunks (records may be their own chunk)."""
        t = self._E
        f = t[version] if 0 <= version < len(t) else None
        if f is None:
            raise ValueError(f"{type(self).__name__} has no version {version}")
        w = bytearray()
        if self._R:
            w = f(self, out, w)
        else:
            f(self, w)
        if w:
            out.append(w)


# ---------------------------------------------------------------- varints


def read_uvarint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Unsigned varint of at most 5 bytes (Kafka rejects longer ones)."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    c = buf[pos + 1]
    if c < 0x80:
        return (b & 0x7F) | (c << 7), pos + 2
    d = buf[pos + 2]
    if d < 0x80:  # 16 KiB..2 MiB record blobs
        return (b & 0x7F) | ((c & 0x7F) << 7) | (d << 14), pos + 3
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 28:
            raise DecodeError("varint is longer than 5 bytes")


def uvarint(n: int) -> bytes:
    """Encode an unsigned varint (n < 2**32)."""
    if n < 0x80:
        return _UV1[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    if n < 0x200000:
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14))
    if n >= 1 << 32 or n < 0:
        raise ValueError(f"unsigned varint out of range: {n}")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _take(buf: memoryview, pos: int, n: int) -> int:
    end = pos + n
    if end > len(buf):
        raise DecodeError(f"need {n} bytes at {pos}, buffer has {len(buf)}")
    return end


# ---------------------------------------------------------------- strings


def _utf8(buf: memoryview, pos: int, end: int) -> str:
    try:
        return str(buf[pos:end], "utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"invalid UTF-8 in string at {pos}") from e


def read_string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = _I16.unpack_from(buf, pos)
    pos += 2
    if n < 0:
        raise DecodeError(f"non-nullable string has length {n}")
    end = pos + n
    if end > len(buf):
        raise DecodeError(f"string of {n} bytes at {pos} overruns the buffer")
    try:
        return str(buf[pos:end], "utf-8"), end
    except UnicodeDecodeError as e:
        raise DecodeError(f"invalid UTF-8 in string at {pos}") from e


def read_nullable_string(buf: memoryview, pos: int) -> tuple[str | None, int]:
    (n,) = _I16.unpack_from(buf, pos)
    pos += 2
    if n < 0:
        if n == -1:
            return None, pos
        raise DecodeError(f"string has negative length {n}")
    end = _take(buf, pos, n)
    return _utf8(buf, pos, end), end


def read_compact_string(buf: memoryview, pos: int) -> tuple[str, int]:
    n = buf[pos]
    if n < 0x80:
        pos += 1
    else:
        n, pos = read_uvarint(buf, pos)
    if n == 0:
        raise DecodeError("non-nullable compact string is null")
    end = pos + n - 1
    if end > len(buf):
        raise DecodeError(f"string of {n - 1} bytes at {pos} overruns the buffer")
    try:
        return str(buf[pos:end], "utf-8"), end
    except UnicodeDecodeError as e:
        raise DecodeError(f"invalid UTF-8 in string at {pos}") from e


def read_compact_nullable_string(buf: memoryview, pos: int) -> tuple[str | None, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = _take(buf, pos, n - 1)
    return _utf8(buf, pos, end), end


def write_string(w: bytearray, s: str) -> None:
    b = s.encode()
    if len(b) > 0x7FFF:
        raise ValueError("string longer than 32767 bytes")
    w += _I16.pack(len(b))
    w += b


def write_nullable_string(w: bytearray, s: str | None) -> None:
    if s is None:
        w += b"\xff\xff"
    else:
        write_string(w, s)


def write_compact_string(w: bytearray, s: str) -> None:
    b = s.encode()
    n = len(b) + 1
    if n < 0x80:
        w.append(n)
    else:
        w += uvarint(n)
    w += b


def write_compact_nullable_string(w: bytearray, s: str | None) -> None:
    if s is None:
        w.append(0)
    else:
        write_compact_string(w, s)


# ---------------------------------------------------------------- bytes


def read_bytes(buf: memoryview, pos: int) -> tuple[Any, int]:
    (n,) = _I32.unpack_from(buf, pos)
    pos += 4
    if n < 0:
        if n == -1:
            return None, pos
        raise DecodeError(f"bytes field has negative length {n}")
    end = _take(buf, pos, n)
    return buf[pos:end], end


def read_compact_bytes(buf: memoryview, pos: int) -> tuple[Any, int]:
    n = buf[pos]
    if n < 0x80:
        pos += 1
    else:
        n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise DecodeError(f"bytes of {n - 1} at {pos} overrun the buffer")
    return buf[pos:end], end


def write_bytes(w: bytearray, b: Any) -> None:
    if b is None:
        w += b"\xff\xff\xff\xff"
    else:
        w += _I32.pack(len(b))
        w += b


def write_compact_bytes(w: bytearray, b: Any) -> None:
    if b is None:
        w.append(0)
    else:
        w += uvarint(len(b) + 1)
        w += b


SMALL_RECORDS = 8192
"""Record blobs up to this size are copied into the running buffer; larger ones (and every
FileRecords) become their own chunk so the network layer can writev/sendfile them."""


def write_records(out: list, w: bytearray, r: Any, compact: bool) -> bytearray:
    """Length prefix + records; returns the bytearray to continue writing into."""
    if r is None:
        if compact:
            w.append(0)
        else:
            w += b"\xff\xff\xff\xff"
        return w
    n = len(r)
    if compact:
        w += uvarint(n + 1)
    else:
        w += _I32.pack(n)
    if n == 0:
        return w
    if n <= SMALL_RECORDS and not getattr(r, "is_file_records", False):
        w += r
        return w
    out.append(w)
    out.append(r)
    return bytearray()


# ---------------------------------------------------------------- arrays


def read_array_len(buf: memoryview, pos: int) -> tuple[int, int]:
    """int32 count; -1 means null; count is bounded by the bytes left (as Kafka checks)."""
    (n,) = _I32.unpack_from(buf, pos)
    pos += 4
    if n < 0:
        if n == -1:
            return -1, pos
        raise DecodeError(f"array has negative length {n}")
    if n > len(buf) - pos:
        raise DecodeError(f"array of {n} elements but only {len(buf) - pos} bytes left")
    return n, pos


def read_compact_array_len(buf: memoryview, pos: int) -> tuple[int, int]:
    n = buf[pos] - 1
    if n < 0x7F:
        pos += 1
        if n < 1:
            return n, pos
    else:
        n, pos = read_uvarint(buf, pos)
        n -= 1
    if n > len(buf) - pos:
        raise DecodeError(f"array of {n} elements but only {len(buf) - pos} bytes left")
    return n, pos


def write_compact_array_len(w: bytearray, a: list | None) -> None:
    if a is None:
        w.append(0)
        return
    n = len(a) + 1
    if n < 0x80:
        w.append(n)
    else:
        w += uvarint(n)


def write_array_len(w: bytearray, a: list | None) -> None:
    w += b"\xff\xff\xff\xff" if a is None else _I32.pack(len(a))


def read_prim_array(buf: memoryview, pos: int, n: int, code: str, size: int) -> tuple[list, int]:
    end = _take(buf, pos, n * size)
    return list(struct.unpack_from(f">{n}{code}", buf, pos)), end


def read_uuid_array(buf: memoryview, pos: int, n: int) -> tuple[list, int]:
    end = _take(buf, pos, 16 * n)
    return [bytes(buf[p : p + 16]) for p in range(pos, end, 16)], end


def write_uuid(w: bytearray, u: bytes) -> None:
    if len(u) != 16:
        raise ValueError(f"uuid must be 16 bytes, got {len(u)}")
    w += u


# ---------------------------------------------------------------- tagged fields


def skip_tag(buf: memoryview, pos: int, size: int) -> int:
    return _take(buf, pos, size)


def skip_tags(buf: memoryview, pos: int) -> int:
    """Skip a whole tagged-field section whose tags are all unknown to this version."""
    nt, pos = read_uvarint(buf, pos)
    for _ in range(nt):
        _tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        pos = _take(buf, pos, size)
    return pos


def write_tagged(w: bytearray, tags: list[tuple[int, bytes]]) -> None:
    """Tagged-field section: count, then (tag, size, bytes) in ascending tag order."""
    w += uvarint(len(tags))
    for tag, data in tags:
        w += uvarint(tag)
        w += uvarint(len(data))
        w += data


def copy_bytes(v: Any) -> bytes | None:
    """`bytes` fields are copied out of the request so they never pin the whole frame."""
    return None if v is None else bytes(v)
