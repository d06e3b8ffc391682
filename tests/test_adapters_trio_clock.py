"""The trio clients under ``trio.testing.MockClock``: virtual time drives the core's deadlines.

The broker is the project's model, reached over ``trio.testing`` memory
streams through the trio clients' ``connect`` hook, so everything runs in one
trio run whose clock jumps ahead whenever every task is waiting.  A fetch
answer held back for 45 s meets the consumer's 30 s request timeout: the
consumer gives up on the request, reconnects and fetches again, all in
virtual time.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from kafka_sansio.transports import trio as ktrio

from kafka_sansio import TopicPartition
from kafka_sansio.testing import ModelCluster, ModelConnection, ModelConnectionRefused

pytestmark = pytest.mark.timeout(60)

FETCH = 1


class MemoryModel:
    """Serves a ModelCluster to trio clients over in-memory streams."""

    def __init__(self, cluster: ModelCluster, nursery: trio.Nursery) -> None:
        self.cluster = cluster
        self.nursery = nursery
        self.changed = trio.Event()
        self.connections = 0

    async def connect(self, host: str, port: int) -> trio.abc.Stream:
        node = next(b.node_id for b in self.cluster.brokers.values() if b.port == port)
        try:
            conn = self.cluster.accept(node, trio.current_time())
        except ModelConnectionRefused as exc:
            raise OSError(str(exc)) from exc
        client, server = trio.testing.memory_stream_pair()
        self.connections += 1
        self.nursery.start_soon(self._serve, conn, server)
        return client

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def _serve(self, conn: ModelConnection, stream: trio.abc.Stream) -> None:
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        conn.close()
                        self._wake()
                        return
                    conn.receive(bytes(data), trio.current_time())
                    self._wake()

            nursery.start_soon(read)
            while True:
                out = conn.data_to_send()
                if out:
                    await stream.send_all(out)
                if conn.closed:
                    await stream.aclose()
                    nursery.cancel_scope.cancel()
                    return
                changed = self.changed
                at = conn.get_timer()
                with trio.move_on_at(float("inf") if at is None else at):
                    await changed.wait()
                if at is not None and trio.current_time() >= at:
                    conn.handle_timer(trio.current_time())


def test_request_timeout_and_reconnect_in_virtual_time() -> None:
    cluster = ModelCluster(brokers=1)
    cluster.create_topic("t", partitions=1)
    cluster.append("t", 0, [(None, f"v{i}".encode(), ()) for i in range(10)])
    # Only the first fetch is held back; ListOffsets for the reset is answered at once.
    cluster.delay(FETCH, 45.0)
    clock = trio.testing.MockClock(autojump_threshold=0)
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            model = MemoryModel(cluster, nursery)
            bootstrap = f"{cluster.brokers[1].host}:{cluster.brokers[1].port}"
            async with ktrio.Consumer(
                bootstrap,
                connect=model.connect,
                auto_offset_reset="earliest",
                request_timeout=30.0,
            ) as consumer:
                consumer.assign([TopicPartition("t", 0)])
                records = await consumer.poll(timeout=120.0)
                seen["values"] = [r.value for _, r in records]
                seen["at"] = trio.current_time()
                seen["connections"] = model.connections
            nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)
    assert seen["values"] == [f"v{i}".encode() for i in range(10)]
    # The held answer was given up on at the request timeout, not waited for.
    assert 30.0 <= seen["at"] < 45.0
    assert seen["connections"] >= 2
