"""Test harness: "brokers" made of a ZooKeeper session + registration + a fake control-plane
server that records LeaderAndIsr/UpdateMetadata/StopReplica + a real KafkaController."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import attrs
import trio

from kafkapy.controller.controller import KafkaController
from kafkapy.network.server import SocketServer
from kafkapy.protocol.api import API_SPECS, ApiKey
from kafkapy.protocol.headers import decode_request_header, encode_response_header, response_header_flexible
from kafkapy.protocol.messages.leader_and_isr import LeaderAndIsrResponse
from kafkapy.protocol.messages.stop_replica import StopReplicaResponse
from kafkapy.protocol.messages.update_metadata import UpdateMetadataResponse
from kafkapy.zk.client import KafkaZkClient
from kafkapy.zk.data import BrokerRegistration, EndPoint


@attrs.define(eq=False)
class FakeBroker:
    broker_id: int
    connect: str
    received: list[tuple[int, Any]] = attrs.field(factory=list)
    zk: KafkaZkClient | None = None
    controller: KafkaController | None = None
    server: SocketServer | None = None
    epoch: int = -1
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)

    async def handle(self, frame: memoryview, conn: Any) -> list | None:
        header = decode_request_header(frame)
        spec = API_SPECS[header.api_key]
        request, _ = spec.request_class.decode(frame, header.body_offset, header.api_version)
        self.received.append((header.api_key, request))
        if header.api_key == ApiKey.LEADER_AND_ISR:
            response: Any = LeaderAndIsrResponse()
        elif header.api_key == ApiKey.UPDATE_METADATA:
            response = UpdateMetadataResponse()
        elif header.api_key == ApiKey.STOP_REPLICA:
            response = StopReplicaResponse(partition_errors=[
                StopReplicaResponse.StopReplicaPartitionError(
                    topic_name=t.topic_name, partition_index=p.partition_index)
                for t in request.topic_states for p in t.partition_states])
        else:
            raise AssertionError(f"unexpected api key {header.api_key}")
        out: list = [encode_response_header(
            header.correlation_id, response_header_flexible(header.api_key, header.api_version))]
        response.encode(header.api_version, out)
        return out

    def requests(self, api_key: int) -> list[Any]:
        return [r for k, r in self.received if k == api_key]

    async def start(self, nursery: trio.Nursery) -> None:
        self.zk = KafkaZkClient(self.connect, session_timeout_ms=4000, connection_timeout_ms=10000)
        await self.zk.start()
        self.server = SocketServer("127.0.0.1", 0, self.handle)
        port = await nursery.start(self.server.run)
        self.epoch = await self.zk.register_broker(BrokerRegistration(
            self.broker_id, [EndPoint("PLAINTEXT", "127.0.0.1", port, "PLAINTEXT")]))
        self.controller = KafkaController(self.zk, self.broker_id)
        await nursery.start(self._run_controller)

    async def _run_controller(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self.controller is not None
        with self.scope:
            await self.controller.run(task_status=task_status)

    async def stop(self) -> None:
        """Broker death: controller stops, session closes (registration vanishes)."""
        if self.controller is not None:
            await self.controller.shutdown()
        self.scope.cancel()
        if self.zk is not None:
            await self.zk.close()
        if self.server is not None:
            await self.server.aclose()


async def wait_until(predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 20.0,
                     what: str = "condition") -> None:
    with trio.fail_after(timeout):
        while True:
            result = predicate()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await trio.sleep(0.05)
