"""Bad input never takes the broker down: each bad connection is closed (or answered with
the Kafka error) and every other client keeps being served."""
from __future__ import annotations

import random
import socket
import struct

import pytest

from tests.broker_fixture import api_versions_v0

pytestmark = pytest.mark.integration


def _connect(broker) -> socket.socket:
    host, port = broker.bootstrap.split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    s.settimeout(10)
    return s


def _closed_by_broker(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _still_serving(broker) -> None:
    with _connect(broker) as s:
        assert 18 in api_versions_v0(s)


def _request(api_key: int, version: int, body: bytes, correlation_id: int = 7,
             tagged_header: bool = False) -> bytes:
    client = b"malformed-test"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client)) + client
    if tagged_header:
        header += b"\x00"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def test_random_bytes_close_only_that_connection(broker):
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    for _ in range(5):
        with _connect(broker) as s:
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            s.sendall(struct.pack(">i", len(junk)) + junk)
            assert _closed_by_broker(s)
        _still_serving(broker)


def test_two_gib_frame_is_refused_without_allocating(broker):
    with _connect(broker) as s:
        s.sendall(struct.pack(">i", 2**31 - 1) + b"\0" * 16)
        assert _closed_by_broker(s)
    _still_serving(broker)


def test_truncated_request_then_eof(broker):
    with _connect(broker) as s:
        frame = _request(3, 1, struct.pack(">i", 1))
        s.sendall(frame[: len(frame) - 3])
        s.shutdown(socket.SHUT_WR)
        assert _closed_by_broker(s)
    _still_serving(broker)


def test_truncated_body_inside_a_whole_frame(broker):
    with _connect(broker) as s:
        # Metadata v1 announcing 5 topics but carrying none.
        s.sendall(_request(3, 1, struct.pack(">i", 5)))
        assert _closed_by_broker(s)
    _still_serving(broker)


def test_unknown_api_key_and_unsupported_version(broker):
    with _connect(broker) as s:
        s.sendall(_request(999, 0, b""))
        assert _closed_by_broker(s)
    with _connect(broker) as s:
        s.sendall(_request(0, 99, b""))              # Produce v99
        assert _closed_by_broker(s)
    _still_serving(broker)


def test_unsupported_api_versions_version_gets_kip511_answer(broker):
    with _connect(broker) as s:
        # Versions >= 3 use request header v2: client id, then an empty tagged-field section.
        s.sendall(_request(18, 99, b"", correlation_id=42, tagged_header=True))
        size = struct.unpack(">i", s.recv(4))[0]
        body = b""
        while len(body) < size:
            body += s.recv(size - len(body))
        correlation_id, error_code = struct.unpack(">ih", body[:6])
        assert correlation_id == 42
        assert error_code == 35                       # UNSUPPORTED_VERSION, v0 layout
    _still_serving(broker)
