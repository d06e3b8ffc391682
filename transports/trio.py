"""trio clients: the core driven by :class:`TrioDriver` in a nursery the client owns.

``async with Consumer("host:9092") as consumer: ...`` opens the nursery that
holds the connection and timer tasks; leaving the block cancels them.  Time
is ``trio.current_time()``, so ``trio.testing.MockClock`` works.  Cancelling
any awaiting call leaves the consumer consistent: records not handed out stay
buffered.
"""

from __future__ import annotations

from typing import Any

import trio

from ._async import AsyncConsumer, AsyncDriver
from ._ops import ConsumerRecord, Security
from ._trio_driver import TrioDriver

__all__ = ["Consumer", "ConsumerRecord", "TrioDriver"]


class Consumer(AsyncConsumer):
    """A consumer in assign mode on trio (methods as :class:`AsyncConsumer`)."""

    _nursery_manager: Any = None

    async def _open_driver(self, security: Security) -> AsyncDriver:
        self._nursery_manager = trio.open_nursery()
        nursery = await self._nursery_manager.__aenter__()
        self._nursery = nursery
        return TrioDriver(
            self._core,
            nursery,
            ssl_context=security.ssl_context,
            server_hostname=security.server_hostname,
        )

    async def _close_driver(self) -> None:
        manager, self._nursery_manager = self._nursery_manager, None
        if manager is not None:
            self._nursery.cancel_scope.cancel()
            await manager.__aexit__(None, None, None)
