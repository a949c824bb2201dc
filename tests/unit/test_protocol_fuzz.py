"""Fuzz: arbitrary or mutated bytes into every decoder at every version raise nothing but
DecodeError (a decoder that crashes differently would take the connection task down)."""
from __future__ import annotations

import protocol_oracle as po
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafkapy.protocol.errors import DecodeError
from kafkapy.protocol.messages import REQUESTS, RESPONSES

pytestmark = pytest.mark.unit

TARGETS = [
    ((REQUESTS if kind == "request" else RESPONSES)[key], v)
    for key, kind, v in po.message_versions()
]
REQUEST_TARGETS = [(c, v) for c, v in TARGETS if c.__name__.endswith("Request")]


def _decode(cls, data: bytes, version: int) -> None:
    try:
        _obj, end = cls.decode(memoryview(data), 0, version)
    except DecodeError:
        return
    assert 0 <= end <= len(data)


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(REQUEST_TARGETS), data=st.binary(max_size=96))
def test_random_bytes_into_request_decoders(target, data: bytes) -> None:
    cls, version = target
    _decode(cls, data, version)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(TARGETS), seed=st.integers(0, 2**32), flips=st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_valid_encodings(target, seed: int, flips) -> None:
    import random

    cls, version = target
    key = cls.API_KEY
    req, resp = po.APIS[key]
    msg = req if cls.__name__.endswith("Request") else resp
    rng = random.Random(seed)
    obj = po.make(msg.root, version, version in msg.flexible, po.our_module(req), None, rng)
    wire = bytearray(po.encode(obj, version))
    if not wire:
        return
    for pos, byte in flips:
        wire[pos % len(wire)] = byte
    _decode(cls, bytes(wire), version)
