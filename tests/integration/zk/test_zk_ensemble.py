"""KafkaZkClient over a 3-node ZooKeeper ensemble: losing a member keeps the session."""
from __future__ import annotations

from pathlib import Path

import pytest
import trio

from kafkapy.zk import data, paths
from kafkapy.zk import events as ev
from kafkapy.zk.client import KafkaZkClient
from kafkapy.zk.session import unbounded_event_channel
from tests.zk_fixture import ZooKeeperEnsemble, four_letter

pytestmark = pytest.mark.integration


async def test_session_survives_member_loss(tmp_path: Path) -> None:
    with ZooKeeperEnsemble(tmp_path) as ensemble:
        zk = KafkaZkClient(ensemble.connect, session_timeout_ms=6000, connection_timeout_ms=20000)
        await zk.start()
        send, recv = unbounded_event_channel()
        zk.add_event_channel(send)
        try:
            epoch = await zk.register_broker(data.BrokerRegistration(
                1, [data.EndPoint("PLAINTEXT", "127.0.0.1", 9092, "PLAINTEXT")]))
            session = zk.session_id
            # stop the member serving our session (found with the `cons` 4lw command)
            sid = f"sid=0x{session:x}"
            serving = [i for i, port in enumerate(ensemble.client_ports)
                       if sid in four_letter(port, "cons")]
            assert len(serving) == 1
            ensemble.stop_member(serving[0])
            with trio.fail_after(30):
                seen = []
                while not (seen and seen[-1].state == ev.CONNECTED):
                    event = await recv.receive()
                    if isinstance(event, ev.ZkSessionEvent):
                        seen.append(event)
            assert not seen[-1].new_session and zk.session_id == session
            reg = await zk.get_broker(1)
            assert reg is not None and reg.epoch == epoch
            assert await zk.exists(paths.broker_path(1)) is not None
        finally:
            await zk.close()
