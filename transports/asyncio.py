"""asyncio clients: the core driven by :class:`AsyncioDriver` on the running loop.

``async with Consumer("host:9092") as consumer: ...`` (and ``Producer``,
``Admin``).  Bytes reach the core from the loop's protocol callbacks, so
connections, timeouts, fetch pipelining and deliveries progress while your
code awaits something else.  Cancelling any awaiting call (``poll``,
``position``, an ``async for``, a flush) leaves the client consistent:
records not handed out stay buffered.
"""

from __future__ import annotations

from ._async import (
    AsyncAdmin,
    AsyncClient,
    AsyncConsumer,
    AsyncDriver,
    AsyncProducer,
    AsyncRecordFuture,
)
from ._asyncio_driver import AsyncioDriver
from ._ops import ConsumerRecord, RecordMetadata, Security

__all__ = [
    "Admin",
    "AsyncioDriver",
    "Consumer",
    "ConsumerRecord",
    "Producer",
    "RecordFuture",
    "RecordMetadata",
]

RecordFuture = AsyncRecordFuture


class _OnAsyncio(AsyncClient):
    async def _open_driver(self, security: Security) -> AsyncDriver:
        return AsyncioDriver(
            self._core,
            ssl_context=security.ssl_context,
            server_hostname=security.server_hostname,
        )

    async def _close_driver(self) -> None:
        if self._driver is not None:
            await self._driver.wait_closed(5.0)


class Consumer(_OnAsyncio, AsyncConsumer):
    """A consumer in assign mode on asyncio (methods as :class:`AsyncConsumer`)."""


class Producer(_OnAsyncio, AsyncProducer):
    """A producer on asyncio (methods as :class:`AsyncProducer`)."""


class Admin(_OnAsyncio, AsyncAdmin):
    """An admin client on asyncio (methods as :class:`AsyncAdmin`)."""
