"""Text files Kafka keeps beside the data: offset checkpoints, epoch checkpoint,
partition.metadata and meta.properties.

Every write goes to `<file>.tmp`, is fsynced, then renamed over the old file and the
directory fsynced, so a crash leaves either the old or the new content, never a mix.
"""
from __future__ import annotations

import os
import uuid
from typing import Iterable, Mapping

from kafkapy.log.topic_partition import TopicPartition


class CheckpointError(Exception):
    """A checkpoint file exists but cannot be parsed."""


def fsync_dir(path: str) -> None:
    """fsync a directory so renames/creates in it are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes) -> None:
    """Replace `path` with `data` crash-safely (tmp, fsync, rename, fsync dir)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def _read_lines(path: str) -> list[str] | None:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return None


def _parse_versioned(path: str, lines: list[str], fields: int) -> list[list[str]]:
    """Parse `version\\ncount\\n` + `count` lines of `fields` space-separated values."""
    try:
        version = int(lines[0])
        count = int(lines[1])
    except (IndexError, ValueError):
        raise CheckpointError(f"{path}: malformed header") from None
    if version != 0:
        raise CheckpointError(f"{path}: unsupported version {version}")
    body = [ln for ln in lines[2:] if ln.strip()]
    if len(body) != count:
        raise CheckpointError(f"{path}: expected {count} entries, found {len(body)}")
    rows = [ln.split() for ln in body]
    for row in rows:
        if len(row) != fields:
            raise CheckpointError(f"{path}: bad entry {' '.join(row)!r}")
    return rows


def read_offset_checkpoint(path: str) -> dict[TopicPartition, int]:
    """Read a `<topic> <partition> <offset>` checkpoint; a missing file is empty."""
    lines = _read_lines(path)
    if lines is None:
        return {}
    out: dict[TopicPartition, int] = {}
    for topic, part, off in _parse_versioned(path, lines, 3):
        try:
            out[TopicPartition(topic, int(part))] = int(off)
        except ValueError:
            raise CheckpointError(f"{path}: bad entry {topic} {part} {off}") from None
    return out


def write_offset_checkpoint(path: str, offsets: Mapping[TopicPartition, int]) -> None:
    lines = ["0", str(len(offsets))]
    lines += [f"{tp.topic} {tp.partition} {off}" for tp, off in offsets.items()]
    write_atomic(path, ("\n".join(lines) + "\n").encode())


def read_epoch_checkpoint(path: str) -> list[tuple[int, int]]:
    """Read `leader-epoch-checkpoint` as ordered (epoch, start_offset) pairs."""
    lines = _read_lines(path)
    if lines is None:
        return []
    try:
        return [(int(e), int(o)) for e, o in _parse_versioned(path, lines, 2)]
    except ValueError:
        raise CheckpointError(f"{path}: bad entry") from None


def write_epoch_checkpoint(path: str, entries: Iterable[tuple[int, int]]) -> None:
    items = list(entries)
    lines = ["0", str(len(items))] + [f"{e} {o}" for e, o in items]
    write_atomic(path, ("\n".join(lines) + "\n").encode())


def read_partition_metadata(path: str) -> bytes | None:
    """Topic id (16 bytes) from `partition.metadata`, or None when absent."""
    lines = _read_lines(path)
    if lines is None:
        return None
    fields: dict[str, str] = {}
    for ln in lines:
        key, sep, value = ln.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise CheckpointError(f"{path}: malformed partition metadata")
    return decode_uuid(fields["topic_id"])


def write_partition_metadata(path: str, topic_id: bytes) -> None:
    write_atomic(path, f"version: 0\ntopic_id: {encode_uuid(topic_id)}".encode())


def encode_uuid(raw: bytes) -> str:
    """Kafka prints Uuids as url-safe base64 without padding (22 chars)."""
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_uuid(text: str) -> bytes:
    import base64

    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise CheckpointError(f"bad uuid {text!r}") from None
    if len(raw) != 16:
        raise CheckpointError(f"bad uuid {text!r}")
    return raw


def read_properties(path: str) -> dict[str, str] | None:
    """Minimal Java-properties reader (key=value, # comments) for meta.properties."""
    lines = _read_lines(path)
    if lines is None:
        return None
    props: dict[str, str] = {}
    for ln in lines:
        s = ln.strip()
        if not s or s[0] in "#!":
            continue
        key, sep, value = s.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


def write_properties(path: str, props: Mapping[str, str]) -> None:
    text = "#\n" + "".join(f"{k}={v}\n" for k, v in props.items())
    write_atomic(path, text.encode())


def random_uuid_hex() -> str:
    return uuid.uuid4().hex
