"""BrokerConnection against a tiny in-test broker built on SocketServer + the codec."""
from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from kafkapy.network.client import BrokerConnection
from kafkapy.network.errors import (
    BrokerConnectFailed,
    CloseConnection,
    ConnectionClosedError,
    CorrelationIdMismatch,
    RequestTimedOut,
    ResponseDecodeError,
)
from kafkapy.network.server import ConnectionInfo
from kafkapy.protocol.headers import decode_request_header, encode_response_header, response_header_flexible
from kafkapy.protocol.messages import REQUESTS
from kafkapy.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafkapy.protocol.messages.metadata import MetadataRequest, MetadataResponse
from kafkapy.protocol.messages.produce import ProduceRequest, ProduceResponse
from network_helpers import running_server

pytestmark = pytest.mark.integration


class TinyBroker:
    """Answers ApiVersions, Metadata (echoing topic names) and Produce.

    Metadata topic names steer misbehaviour: `sleep:<s>` delays the answer, `close` closes
    the connection, `garbage` sends an undecodable body, `wrongcorr` a wrong correlation id.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int, str | None]] = []
        self.produced = 0

    async def __call__(self, frame: memoryview, conn: ConnectionInfo) -> list[Any] | None:
        hdr = decode_request_header(frame)
        self.seen.append((hdr.api_key, hdr.api_version, hdr.correlation_id, hdr.client_id))
        req, _ = REQUESTS[hdr.api_key].decode(frame, hdr.body_offset, hdr.api_version)
        corr = hdr.correlation_id
        if hdr.api_key == 18:
            resp: Any = ApiVersionsResponse(api_keys=[
                ApiVersionsResponse.ApiVersion(api_key=3, min_version=0, max_version=12)
            ])
        elif hdr.api_key == 0:
            self.produced += 1
            if req.acks == 0:
                return None
            resp = ProduceResponse()
        else:
            names = [t.name for t in req.topics]
            for name in names:
                if name.startswith("sleep:"):
                    await trio.sleep(float(name[6:]))
                elif name == "close":
                    raise CloseConnection("test asked to close")
                elif name == "garbage":
                    return [encode_response_header(corr, hdr.api_version >= 9), b"\xff"]
                elif name == "wrongcorr":
                    corr += 1000
            resp = MetadataResponse(
                controller_id=len(self.seen),
                topics=[MetadataResponse.MetadataResponseTopic(name=n) for n in names],
            )
        out: list[Any] = [encode_response_header(corr, response_header_flexible(hdr.api_key, hdr.api_version))]
        resp.encode(hdr.api_version, out)
        return out


def metadata(*names: str) -> MetadataRequest:
    return MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=n) for n in names])


async def open_client(server: Any, client_id: str | None = "kafkapy-test") -> BrokerConnection:
    return await BrokerConnection.connect("127.0.0.1", server.bound_port, client_id)


@pytest.mark.parametrize("version", [0, 3])
async def test_api_versions_round_trip(version: int) -> None:
    broker = TinyBroker()
    async with running_server(broker) as server, await open_client(server) as conn:
        resp = await conn.send(18, version, ApiVersionsRequest(client_software_name="t"))
        assert isinstance(resp, ApiVersionsResponse)
        assert [(k.api_key, k.max_version) for k in resp.api_keys] == [(3, 12)]
    assert broker.seen == [(18, version, 0, "kafkapy-test")]


@pytest.mark.parametrize("version", [1, 8, 9, 12])
async def test_metadata_across_header_versions(version: int) -> None:
    async with running_server(TinyBroker()) as server, await open_client(server, None) as conn:
        for i in range(3):
            resp = await conn.send(3, version, metadata(f"t{i}"))
            assert [t.name for t in resp.topics] == [f"t{i}"]


async def test_concurrent_requests_matched_in_order() -> None:
    seed = random.randrange(2**32)
    print(f"concurrent: seed={seed}")
    rng = random.Random(seed)
    broker = TinyBroker()
    results: dict[int, list[str]] = {}
    async with running_server(broker) as server, await open_client(server) as conn:

        async def one(i: int) -> None:
            await trio.sleep(rng.choice([0, 0.001]))
            names = [f"sleep:{rng.choice([0, 0.002])}", f"topic-{i}"]
            resp = await conn.send(3, rng.choice([4, 12]), metadata(*names))
            results[i] = [t.name for t in resp.topics][1:]

        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(one, i)
        assert conn.in_flight_count == 0
    assert results == {i: [f"topic-{i}"] for i in range(30)}
    assert [s[2] for s in broker.seen] == list(range(30))


async def test_timeout_and_cancellation_keep_connection_usable() -> None:
    async with running_server(TinyBroker()) as server, await open_client(server) as conn:
        with pytest.raises(RequestTimedOut):
            await conn.send(3, 12, metadata("sleep:0.15", "slow"), timeout=0.02)
        with trio.move_on_after(0.02):
            await conn.send(3, 12, metadata("sleep:0.1", "cancelled"))
        # Both late responses are read and dropped; this one still gets its own answer.
        resp = await conn.send(3, 12, metadata("after"))
        assert [t.name for t in resp.topics] == ["after"]
        assert not conn.closed


async def test_produce_acks_zero_expects_no_response() -> None:
    broker = TinyBroker()
    async with running_server(broker) as server, await open_client(server) as conn:
        assert await conn.send(0, 9, ProduceRequest(acks=0, timeout_ms=1000)) is None
        assert conn.in_flight_count == 0
        resp = await conn.send(0, 9, ProduceRequest(acks=1, timeout_ms=1000))
        assert isinstance(resp, ProduceResponse)
    assert broker.produced == 2


async def test_server_closing_fails_in_flight_and_later_sends() -> None:
    async with running_server(TinyBroker()) as server, await open_client(server) as conn:
        errors: list[BaseException] = []

        async def doomed(names: tuple[str, ...]) -> None:
            try:
                await conn.send(3, 12, metadata(*names))
            except ConnectionClosedError as e:
                errors.append(e)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(doomed, ("close",))
            await trio.sleep(0)
            nursery.start_soon(doomed, ("never",))
        assert len(errors) == 2 and conn.closed
        with pytest.raises(ConnectionClosedError):
            await conn.send(3, 12, metadata("x"))


async def test_undecodable_response_fails_only_that_request() -> None:
    async with running_server(TinyBroker()) as server, await open_client(server) as conn:
        with pytest.raises(ResponseDecodeError):
            await conn.send(3, 12, metadata("garbage"))
        resp = await conn.send(3, 12, metadata("fine"))
        assert [t.name for t in resp.topics] == ["fine"]


async def test_wrong_correlation_id_closes_connection() -> None:
    async with running_server(TinyBroker()) as server, await open_client(server) as conn:
        with pytest.raises(CorrelationIdMismatch):
            await conn.send(3, 12, metadata("wrongcorr"))
        assert conn.closed
        with pytest.raises(ConnectionClosedError):
            await conn.send(3, 12, metadata("x"))


async def test_connect_refused_is_a_connection_error() -> None:
    async with running_server(TinyBroker()) as server:
        port = server.bound_port
    with pytest.raises(BrokerConnectFailed) as info:
        await BrokerConnection.connect("127.0.0.1", port, "c")
    assert isinstance(info.value, ConnectionError)


async def test_aclose_fails_waiters() -> None:
    async with running_server(TinyBroker()) as server:
        conn = await open_client(server)
        got: list[BaseException] = []

        async def waiter() -> None:
            try:
                await conn.send(3, 12, metadata("sleep:5"))
            except ConnectionClosedError as e:
                got.append(e)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            with trio.fail_after(5):
                while conn.in_flight_count == 0:
                    await trio.sleep(0.001)
            await conn.aclose()
        assert len(got) == 1 and conn.closed


async def test_timeout_in_the_middle_of_a_large_response_keeps_the_stream_in_sync() -> None:
    """Large frames are received straight into their own buffer; a request that times out
    half way through one must leave the rest to be read and dropped, not desynchronise."""
    rng = random.Random(7)
    big_names = [f"t{i:05d}-" + "x" * 40 for i in range(4000)]   # a ~190 KB response
    halfway = trio.Event()
    resume = trio.Event()

    async def serve(stream: trio.SocketStream) -> None:
        buf = bytearray()
        n = 0
        while True:
            while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            size = int.from_bytes(buf[:4], "big")
            frame = memoryview(bytes(buf[4:4 + size]))
            del buf[:4 + size]
            hdr = decode_request_header(frame)
            req, _ = REQUESTS[3].decode(frame, hdr.body_offset, hdr.api_version)
            names = big_names if n == 0 else [t.name for t in req.topics]
            out: list[Any] = [encode_response_header(hdr.correlation_id, True)]
            MetadataResponse(topics=[MetadataResponse.MetadataResponseTopic(name=t)
                                     for t in names]).encode(hdr.api_version, out)
            body = b"".join(bytes(c) for c in out)
            data = len(body).to_bytes(4, "big") + body
            if n == 0:   # stall in the middle of the big frame
                cut = 100_000 + rng.randrange(1000)
                await stream.send_all(data[:cut])
                halfway.set()
                await resume.wait()
                data = data[cut:]
            await stream.send_all(data)
            n += 1

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, serve, 0)
        port = listeners[0].socket.getsockname()[1]
        async with await BrokerConnection.connect("127.0.0.1", port, "t") as conn:
            with pytest.raises(RequestTimedOut):
                with trio.fail_after(10):
                    await conn.send(3, 12, metadata("big"), timeout=0.3)
            assert halfway.is_set()
            resume.set()
            resp = await conn.send(3, 12, metadata("after", "big-one-dropped"), timeout=10)
            assert [t.name for t in resp.topics] == ["after", "big-one-dropped"]
            assert not conn.closed
        nursery.cancel_scope.cancel()
