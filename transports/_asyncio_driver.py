"""The asyncio driver: runs any kafka_sansio core on an asyncio event loop.

Each connection is an :class:`asyncio.Protocol`, so bytes reach the core from
the loop's own callbacks, whether or not the user is awaiting anything; the
core's one timer is a ``loop.call_at`` handle.  After every call into the core
the driver executes its commands (open, write, close), re-arms the timer and
wakes the coroutines waiting in :meth:`AsyncioDriver.wait_until`.  Nothing
here blocks the loop and nothing here knows Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable

from kafka_sansio import CloseConnection, DrivenCore, KafkaSansioError, OpenConnection, SendData

from ._errors import TlsError

__all__ = ["AsyncioDriver"]


class _Conn:
    __slots__ = ("closed", "node_id", "pending", "task", "transport")

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.task: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.pending = bytearray()
        #: Closed on the core's command, or reported lost: the core hears nothing more.
        self.closed = False


class _Protocol(asyncio.Protocol):
    def __init__(self, driver: AsyncioDriver, conn: _Conn) -> None:
        self.driver = driver
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        self.driver._data(self.conn, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver._lost(self.conn)


class AsyncioDriver:
    """Pumps ``core`` on the running loop.  Create it inside a coroutine.

    ``ssl_context`` makes every connection TLS (verification as the context
    says); ``server_hostname`` overrides the name checked against the
    certificate (default: the host the core connects to).
    """

    def __init__(
        self,
        core: DrivenCore,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.core = core
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.errors: list[KafkaSansioError] = []
        #: Called after every input fed to the core (the producer routes deliveries).
        self.on_progress: Callable[[], None] | None = None
        self.closed = False
        self._loop = asyncio.get_running_loop()
        #: The loop's clock, ``loop.time()`` (bound here: a producer reads it per record).
        self.now: Callable[[], float] = self._loop.time
        self._conns: dict[int, _Conn] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._waiters: list[asyncio.Future[None]] = []
        #: Connections closing gracefully whose transports have not finished yet.
        self._draining: set[_Conn] = set()
        self.flush_scheduled = False

    # ------------------------------------------------------------ public

    def flush(self) -> None:
        """Carry out the core's queued commands and re-arm its timer; call after every core call."""
        for cmd in self.core.commands():
            if isinstance(cmd, SendData):
                conn = self._conns.get(cmd.node_id)
                if conn is None:
                    continue
                if conn.transport is not None:
                    conn.transport.write(cmd.data)
                else:
                    conn.pending += cmd.data
            elif isinstance(cmd, OpenConnection):
                self._open(cmd)
            elif isinstance(cmd, CloseConnection):
                self._close(cmd.node_id, graceful=True)
        self._arm_timer()

    def flush_soon(self) -> None:
        """:meth:`flush` once the running task yields to the loop (many calls, one flush)."""
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self.flush_scheduled = False
        if not self.closed:
            self.flush()

    async def wait_until(self, deadline: float | None) -> None:
        """Return after the next input reached the core, or at ``deadline`` (loop time)."""
        if self.closed and not self._draining:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(fut)
        handle = None if deadline is None else self._loop.call_at(deadline, _resolve, fut)
        try:
            await fut
        finally:
            if handle is not None:
                handle.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)

    async def wait_closed(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until sockets closed gracefully have sent everything."""
        deadline = self.now() + timeout
        while self._draining and self.now() < deadline:
            await self.wait_until(deadline)

    async def checkpoint_if_cancelled(self) -> None:
        """Nothing to do on asyncio (trio needs its checkpoints)."""

    async def checkpoint(self) -> None:
        """Nothing to do on asyncio (trio needs its checkpoints)."""

    async def yield_now(self) -> None:
        """Let the loop run its other callbacks (socket reads, timers) once."""
        await asyncio.sleep(0)

    def close(self) -> None:
        """Close every socket and stop the timer (close the core first, then flush).

        Bytes already queued still go out; :meth:`wait_closed` waits for that.
        """
        self.flush()
        self.closed = True
        for node_id in list(self._conns):
            self._close(node_id, graceful=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    # ------------------------------------------------------------ internals

    def _after(self) -> None:
        self.flush()
        if self.on_progress is not None:
            self.on_progress()
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            _resolve(fut)

    def _arm_timer(self) -> None:
        at = None if self.closed else self.core.get_timer()
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None:
            self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.now()
        at = self.core.get_timer()
        if at is not None and now >= at:
            self.core.handle_timer(now)
            self._after()
        else:
            self._arm_timer()

    def _open(self, cmd: OpenConnection) -> None:
        self._close(cmd.node_id)
        conn = _Conn(cmd.node_id)
        self._conns[cmd.node_id] = conn
        conn.task = self._loop.create_task(self._connect(conn, cmd.host, cmd.port))

    async def _connect(self, conn: _Conn, host: str, port: int) -> None:
        hostname = None
        if self.ssl_context is not None:
            hostname = self.server_hostname or host
        try:
            transport, _ = await self._loop.create_connection(
                lambda: _Protocol(self, conn),
                host,
                port,
                ssl=self.ssl_context,
                server_hostname=hostname,
            )
        except ssl.SSLError as exc:
            self.errors.append(TlsError(f"TLS handshake with {host}:{port} failed: {exc}"))
            self._lost(conn)
            return
        except OSError:
            self._lost(conn)
            return
        if conn.closed:
            transport.abort()
            return
        conn.transport = transport
        self.core.connection_made(conn.node_id, self.now())
        if conn.pending:
            transport.write(bytes(conn.pending))
            conn.pending.clear()
        self._after()

    def _data(self, conn: _Conn, data: bytes) -> None:
        if conn.closed:
            return
        self.core.data_received(conn.node_id, data, self.now())
        self._after()

    def _lost(self, conn: _Conn) -> None:
        if conn in self._draining:
            self._draining.discard(conn)
            self._wake()
        if conn.closed:
            return
        conn.closed = True
        if self._conns.get(conn.node_id) is conn:
            del self._conns[conn.node_id]
        if conn.transport is not None:
            conn.transport.abort()
        if not self.closed:
            self.core.connection_lost(conn.node_id, self.now())
            self._after()

    def _close(self, node_id: int, *, graceful: bool = False) -> None:
        conn = self._conns.pop(node_id, None)
        if conn is None:
            return
        conn.closed = True
        if conn.task is not None and not conn.task.done():
            conn.task.cancel()
        if conn.transport is not None:
            if graceful and not conn.transport.is_closing():
                self._draining.add(conn)
                conn.transport.close()  # what the core queued still goes out
            else:
                conn.transport.abort()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
