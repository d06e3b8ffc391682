"""trio clients: the core driven by :class:`TrioDriver` in a nursery the client owns.

``async with Consumer("host:9092") as consumer: ...`` (and ``Producer``,
``Admin``) opens the nursery that holds the connection and timer tasks;
leaving the block cancels them.  Time is ``trio.current_time()``, so
``trio.testing.MockClock`` works.  Cancelling any awaiting call leaves the
client consistent: records not handed out stay buffered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ._async import (
    AsyncAdmin,
    AsyncClient,
    AsyncConsumer,
    AsyncDriver,
    AsyncProducer,
    AsyncRecordFuture,
)
from ._ops import ConsumerRecord, RecordMetadata, Security
from ._trio_driver import TrioDriver

__all__ = [
    "Admin",
    "Consumer",
    "ConsumerRecord",
    "Producer",
    "RecordFuture",
    "RecordMetadata",
    "TrioDriver",
]

RecordFuture = AsyncRecordFuture


class _OnTrio(AsyncClient):
    """Owns a nursery from ``__aenter__`` to ``__aexit__`` (use ``async with``).

    ``connect`` (optional) is an async callable ``(host, port) -> trio.abc.Stream``
    used instead of TCP, e.g. to run a client over ``trio.testing`` memory
    streams under a ``MockClock``.
    """

    _nursery_manager: Any = None
    _nursery: trio.Nursery

    def __init__(
        self,
        *args: Any,
        connect: Callable[[str, int], Awaitable[trio.abc.Stream]] | None = None,
        **options: Any,
    ) -> None:
        self._connect = connect
        super().__init__(*args, **options)

    async def _open_driver(self, security: Security) -> AsyncDriver:
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        return TrioDriver(
            self._core,
            self._nursery,
            ssl_context=security.ssl_context,
            server_hostname=security.server_hostname,
            connect=self._connect,
        )

    async def _close_driver(self) -> None:
        manager, self._nursery_manager = self._nursery_manager, None
        if manager is not None:
            if self._driver is not None:
                await self._driver.wait_closed(5.0)
            self._nursery.cancel_scope.cancel()
            await manager.__aexit__(None, None, None)


class Consumer(_OnTrio, AsyncConsumer):
    """A consumer in assign mode on trio (methods as :class:`AsyncConsumer`)."""


class Producer(_OnTrio, AsyncProducer):
    """A producer on trio (methods as :class:`AsyncProducer`)."""


class Admin(_OnTrio, AsyncAdmin):
    """An admin client on trio (methods as :class:`AsyncAdmin`)."""
