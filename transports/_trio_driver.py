"""The trio driver: runs any kafka_sansio core inside a trio nursery.

Per connection one task opens the stream (TLS via :class:`trio.SSLStream`),
reads into the core and, in a child task, writes what the core queued; one
more task sleeps until the core's timer.  All of them live in the nursery
the caller passes, so they end with it.  Time is ``trio.current_time()``,
so ``trio.testing.MockClock`` drives the core's deadlines too.

A ``send_all`` that is cancelled or fails leaves the stream in an unknown
state; the core is told the connection was lost (its requests on that
connection fail or are retried), unless the core itself asked to close it.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

import trio

from kafka_sansio import CloseConnection, DrivenCore, KafkaSansioError, OpenConnection, SendData

from ._errors import TlsError

__all__ = ["TrioDriver"]

_READ_SIZE = 1 << 20
#: Seconds a connection the core closes may take to send what is still queued for it.
_CLOSE_LINGER = 5.0


class _Conn:
    __slots__ = ("closed", "draining", "node_id", "out", "scope", "stream", "writer_wake")

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.scope = trio.CancelScope()
        self.stream: trio.abc.Stream | None = None
        self.out = bytearray()
        self.writer_wake = trio.Event()
        #: Closed on the core's command, or reported lost: the core hears nothing more.
        self.closed = False
        #: Closed by the core with bytes still queued: the writer sends them, then closes.
        self.draining = False


class TrioDriver:
    """Pumps ``core`` with tasks in ``nursery`` (see the module docstring)."""

    def __init__(
        self,
        core: DrivenCore,
        nursery: trio.Nursery,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect: Callable[[str, int], Awaitable[trio.abc.Stream]] | None = None,
    ) -> None:
        self.core = core
        #: Opens the byte stream to a broker; TCP unless a test swaps in memory streams.
        self.connect = connect or trio.open_tcp_stream
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.errors: list[KafkaSansioError] = []
        #: Called after every input fed to the core (the producer routes deliveries).
        self.on_progress: Callable[[], None] | None = None
        self.closed = False
        self._nursery = nursery
        self._conns: dict[int, _Conn] = {}
        self._progress = trio.Event()
        self._timer_wake = trio.Event()
        self._timer_at: float | None = None
        #: Connections closing gracefully whose writers have not finished yet.
        self._draining: set[_Conn] = set()
        self._drained = trio.Event()
        self.flush_scheduled = False
        self._token = trio.lowlevel.current_trio_token()
        #: The run's clock, what ``trio.current_time()`` reads (a ``MockClock`` in tests);
        #: bound here, as a producer reads it per record.
        self.now: Callable[[], float] = trio.lowlevel.current_clock().current_time
        nursery.start_soon(self._timer_task)

    # ------------------------------------------------------------ public

    def flush(self) -> None:
        """Carry out the core's queued commands and re-arm its timer; call after every core call."""
        for cmd in self.core.commands():
            if isinstance(cmd, SendData):
                conn = self._conns.get(cmd.node_id)
                if conn is not None:
                    conn.out += cmd.data
                    conn.writer_wake.set()
            elif isinstance(cmd, OpenConnection):
                self._close(cmd.node_id)
                conn = _Conn(cmd.node_id)
                self._conns[cmd.node_id] = conn
                self._nursery.start_soon(self._connection_task, conn, cmd.host, cmd.port)
            elif isinstance(cmd, CloseConnection):
                self._close(cmd.node_id, graceful=True)
        at = None if self.closed else self.core.get_timer()
        if at is not None and (self._timer_at is None or at < self._timer_at):
            self._timer_wake.set()

    def flush_soon(self) -> None:
        """:meth:`flush` once the running task yields (many calls, one flush)."""
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self._token.run_sync_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self.flush_scheduled = False
        if not self.closed:
            self.flush()

    async def wait_until(self, deadline: float | None) -> None:
        """Return after the next input reached the core, or at ``deadline`` (trio time)."""
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        progress = self._progress
        with trio.move_on_at(float("inf") if deadline is None else deadline):
            await progress.wait()

    async def wait_closed(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until sockets closed gracefully have sent everything."""
        with trio.move_on_after(timeout):
            while self._draining:
                self._drained = trio.Event()
                await self._drained.wait()

    async def checkpoint_if_cancelled(self) -> None:
        """Raise Cancelled here, before an operation starts, if the caller is cancelled."""
        await trio.lowlevel.checkpoint_if_cancelled()

    async def checkpoint(self) -> None:
        """A trio checkpoint that cannot be cancelled once an operation has taken its result."""
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def yield_now(self) -> None:
        """A full checkpoint: other tasks run, and a cancellation is raised here."""
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """Cancel every connection task and the timer (close the core first)."""
        self.flush()
        self.closed = True
        for node_id in list(self._conns):
            self._close(node_id, graceful=True)
        self._timer_wake.set()
        self._wake()

    # ------------------------------------------------------------ internals

    def _after(self) -> None:
        self.flush()
        if self.on_progress is not None:
            self.on_progress()
        self._wake()

    def _wake(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def _timer_task(self) -> None:
        while not self.closed:
            wake = self._timer_wake = trio.Event()
            at = self._timer_at = self.core.get_timer()
            with trio.move_on_at(float("inf") if at is None else at):
                await wake.wait()
            if self.closed:
                return
            now = self.now()
            at = self.core.get_timer()
            if at is not None and now >= at:
                self.core.handle_timer(now)
                self._after()

    async def _connection_task(self, conn: _Conn, host: str, port: int) -> None:
        with conn.scope:
            try:
                stream: trio.abc.Stream = await self.connect(host, port)
                if self.ssl_context is not None:
                    tls = trio.SSLStream(
                        stream, self.ssl_context, server_hostname=self.server_hostname or host
                    )
                    try:
                        await tls.do_handshake()
                    except trio.BrokenResourceError as exc:
                        cause = exc.__cause__
                        if isinstance(cause, ssl.SSLError):
                            self.errors.append(
                                TlsError(f"TLS handshake with {host}:{port} failed: {cause}")
                            )
                        raise
                    stream = tls
            except (OSError, trio.BrokenResourceError):
                self._lost(conn)
                return
            conn.stream = stream
            try:
                self.core.connection_made(conn.node_id, self.now())
                self._after()
                async with trio.open_nursery() as inner:
                    inner.start_soon(self._writer, conn, stream)
                    await self._reader(conn, stream)
                    inner.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)

    async def _reader(self, conn: _Conn, stream: trio.abc.Stream) -> None:
        while True:
            try:
                data = await stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                self._lost(conn)
                return
            if conn.closed:
                if conn.draining:
                    continue  # the core is done with it; the writer finishes and closes
                return
            self.core.data_received(conn.node_id, bytes(data), self.now())
            self._after()

    async def _writer(self, conn: _Conn, stream: trio.abc.Stream) -> None:
        while True:
            if not conn.out:
                conn.writer_wake = trio.Event()
                await conn.writer_wake.wait()
                continue
            data = bytes(conn.out)
            conn.out.clear()
            try:
                if conn.draining:
                    with trio.move_on_after(_CLOSE_LINGER):
                        await stream.send_all(data)
                    self._draining.discard(conn)
                    self._drained.set()
                    conn.scope.cancel()
                    return
                await stream.send_all(data)
            except trio.Cancelled:
                # Cut off mid-write: the broker may have part of a request.
                self._lost(conn)
                raise
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                self._lost(conn)
                conn.scope.cancel()
                return

    def _lost(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.scope.cancel()
        if self._conns.get(conn.node_id) is conn:
            del self._conns[conn.node_id]
        if not self.closed:
            self.core.connection_lost(conn.node_id, self.now())
            self._after()

    def _close(self, node_id: int, *, graceful: bool = False) -> None:
        conn = self._conns.pop(node_id, None)
        if conn is None:
            return
        conn.closed = True
        if graceful and conn.out and conn.stream is not None:
            # What the core queued still goes out: the writer closes after it.
            conn.draining = True
            self._draining.add(conn)
            conn.writer_wake.set()
            return
        conn.scope.cancel()
