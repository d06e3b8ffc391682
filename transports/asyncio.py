"""asyncio clients: the core driven by :class:`AsyncioDriver` on the running loop.

``async with Consumer("host:9092") as consumer: ...``.  Bytes reach the core
from the loop's protocol callbacks, so connections, timeouts and fetch
pipelining progress while your code awaits something else.  Cancelling any
awaiting call (``poll``, ``position``, an ``async for``) leaves the consumer
consistent: records not handed out stay buffered.
"""

from __future__ import annotations

from ._async import AsyncConsumer, AsyncDriver
from ._asyncio_driver import AsyncioDriver
from ._ops import ConsumerRecord, Security

__all__ = ["AsyncioDriver", "Consumer", "ConsumerRecord"]


class Consumer(AsyncConsumer):
    """A consumer in assign mode on asyncio (methods as :class:`AsyncConsumer`)."""

    async def _open_driver(self, security: Security) -> AsyncDriver:
        return AsyncioDriver(
            self._core,
            ssl_context=security.ssl_context,
            server_hostname=security.server_hostname,
        )

    async def _close_driver(self) -> None:
        return None
