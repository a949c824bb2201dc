"""ControllerChannelManager: the controller's request pipes to every live broker (itself too).

`ControllerChannelManager(controller_id, nursery, on_response, listener="PLAINTEXT",
request_timeout_s=30.0)`: one trio task and one unbounded queue per broker, one persistent
`BrokerConnection` to the broker's advertised endpoint of `listener`. Requests go out one at a
time in queue order; a request is retried (reconnecting, 100 ms backoff) until it is answered,
as Kafka's RequestSendThread does. Removing a broker or `shutdown()` cancels its task and drops
whatever is queued. `on_response(broker_id, request_data, response)` is called for requests
queued with `report=True`.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable

import attrs
import trio

from kafkapy.controller import requests as R
from kafkapy.network.client import BrokerConnection
from kafkapy.network.errors import BrokerConnectionError
from kafkapy.protocol.messages.leader_and_isr import (LeaderAndIsrRequest,
                                                      LeaderAndIsrRequest_LeaderAndIsrLiveLeader,
                                                      LeaderAndIsrRequest_LeaderAndIsrPartitionState,
                                                      LeaderAndIsrRequest_LeaderAndIsrTopicState)
from kafkapy.protocol.messages.stop_replica import (StopReplicaRequest,
                                                    StopReplicaRequest_StopReplicaPartitionState,
                                                    StopReplicaRequest_StopReplicaTopicState)
from kafkapy.protocol.messages.update_metadata import (
    UpdateMetadataRequest, UpdateMetadataRequest_UpdateMetadataBroker,
    UpdateMetadataRequest_UpdateMetadataEndpoint, UpdateMetadataRequest_UpdateMetadataPartitionState,
    UpdateMetadataRequest_UpdateMetadataTopicState)
from kafkapy.zk.data import BrokerRegistration

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.1

_MESSAGE_CLASSES: dict[type, type] = {
    R.LeaderAndIsrData: LeaderAndIsrRequest,
    R.LeaderAndIsrTopicState: LeaderAndIsrRequest_LeaderAndIsrTopicState,
    R.LeaderAndIsrPartitionState: LeaderAndIsrRequest_LeaderAndIsrPartitionState,
    R.LeaderAndIsrLiveLeader: LeaderAndIsrRequest_LeaderAndIsrLiveLeader,
    R.UpdateMetadataData: UpdateMetadataRequest,
    R.UpdateMetadataTopicState: UpdateMetadataRequest_UpdateMetadataTopicState,
    R.UpdateMetadataPartitionState: UpdateMetadataRequest_UpdateMetadataPartitionState,
    R.UpdateMetadataBroker: UpdateMetadataRequest_UpdateMetadataBroker,
    R.UpdateMetadataEndpoint: UpdateMetadataRequest_UpdateMetadataEndpoint,
    R.StopReplicaData: StopReplicaRequest,
    R.StopReplicaTopicState: StopReplicaRequest_StopReplicaTopicState,
    R.StopReplicaPartitionState: StopReplicaRequest_StopReplicaPartitionState,
}
_SKIP = frozenset({"api_key", "version"})


def to_message(value: Any) -> Any:
    """attrs request data -> generated codec object (same snake_case field names)."""
    if isinstance(value, list):
        return [to_message(v) for v in value]
    cls = _MESSAGE_CLASSES.get(type(value))
    if cls is None:
        return value
    kwargs = {f.name: to_message(getattr(value, f.name))
              for f in attrs.fields(type(value)) if f.name not in _SKIP}
    return cls(**kwargs)


def describe_request(data: R.ControlRequestData) -> str:
    return f"{type(data).__name__.removesuffix('Data')}({len(R.request_partitions(data))} partitions)"


@attrs.define(slots=True, eq=False)
class _BrokerPipe:
    registration: BrokerRegistration
    send: trio.MemorySendChannel[Any]
    recv: trio.MemoryReceiveChannel[Any]
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)


@attrs.define(slots=True, eq=False)
class ControllerChannelManager:
    controller_id: int
    nursery: trio.Nursery
    on_response: Callable[[int, R.ControlRequestData, Any], None]
    listener: str = "PLAINTEXT"
    request_timeout_s: float = 30.0
    _pipes: dict[int, _BrokerPipe] = attrs.field(factory=dict)

    @property
    def broker_ids(self) -> list[int]:
        return sorted(self._pipes)

    def add_broker(self, registration: BrokerRegistration) -> None:
        if registration.broker_id in self._pipes:
            self.remove_broker(registration.broker_id)
        send, recv = trio.open_memory_channel[Any](math.inf)
        pipe = _BrokerPipe(registration, send, recv)
        self._pipes[registration.broker_id] = pipe
        self.nursery.start_soon(self._run_pipe, pipe)

    def remove_broker(self, broker_id: int) -> None:
        pipe = self._pipes.pop(broker_id, None)
        if pipe is not None:
            pipe.scope.cancel()
            pipe.send.close()

    def send(self, broker_id: int, data: R.ControlRequestData, report: bool = False) -> bool:
        """Queue a request; False (dropped) if the broker has no pipe (not live)."""
        pipe = self._pipes.get(broker_id)
        if pipe is None:
            log.debug("dropping %s for broker %d: not live", describe_request(data), broker_id)
            return False
        pipe.send.send_nowait((data, report))
        return True

    def shutdown(self) -> None:
        for broker_id in list(self._pipes):
            self.remove_broker(broker_id)

    def _address(self, reg: BrokerRegistration) -> tuple[str, int]:
        ep = reg.endpoint(self.listener) or reg.endpoints[0]
        return ep.host, ep.port

    async def _run_pipe(self, pipe: _BrokerPipe) -> None:
        broker_id = pipe.registration.broker_id
        host, port = self._address(pipe.registration)
        conn: BrokerConnection | None = None
        with pipe.scope:
            try:
                async for data, report in pipe.recv:
                    try:
                        message = to_message(data)
                    except Exception:  # a bug in request building must not kill the controller
                        log.exception("cannot encode %s for broker %d; dropped",
                                      describe_request(data), broker_id)
                        continue
                    while True:
                        try:
                            if conn is None or conn.closed:
                                conn = await BrokerConnection.connect(
                                    host, port, f"controller-{self.controller_id}",
                                    timeout=self.request_timeout_s)
                            response = await conn.send(data.api_key, data.version, message,
                                                       timeout=self.request_timeout_s)
                            break
                        except (BrokerConnectionError, OSError) as exc:
                            log.info("controller -> broker %d (%s:%d): %s; retrying %s",
                                     broker_id, host, port, exc, describe_request(data))
                            if conn is not None:
                                await conn.aclose()
                                conn = None
                            await trio.sleep(RETRY_BACKOFF_S)
                    code = getattr(response, "error_code", 0)
                    if code:
                        log.warning("broker %d answered %s with error %d", broker_id,
                                    describe_request(data), code)
                    if report:
                        self.on_response(broker_id, data, response)
            finally:
                if conn is not None:
                    with trio.CancelScope(shield=True):
                        await conn.aclose()
