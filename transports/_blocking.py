"""A blocking driver: runs any kafka_sansio core over real sockets with ``selectors``.

It is the whole transport: open the (non-blocking) sockets the core asks
for, write what it queues, feed it what arrives together with
``time.monotonic()``, and fire its one timer.  It owns no Kafka logic.  Use it
from one thread; :meth:`BlockingDriver.wakeup` may be called from another to
interrupt a wait.

With an ``ssl_context`` every connection is TLS.  The TLS state machine is
the standard library's ``ssl.SSLObject`` over two memory buffers, so the
handshake and the records ride the same selector loop as plain TCP: bytes
read from the socket go into the object, the bytes it produces go out
through the socket's write buffer.  The core hears ``connection_made`` only
after the handshake completed; a handshake the peer's certificate fails
(or that finds no common protocol) is reported to the core as
``connection_lost`` and kept as a :class:`TlsError` in
:attr:`BlockingDriver.errors`, because reconnecting will not cure it.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import ssl
import time
from collections.abc import Callable

from kafka_sansio import (
    CloseConnection,
    DrivenCore,
    KafkaSansioError,
    OpenConnection,
    SendData,
)

from ._errors import TlsError

__all__ = ["BlockingDriver"]

_READ_SIZE = 1 << 20
#: Seconds a connection the core closes may take to send what is still queued for it.
_CLOSE_LINGER = 5.0

# Errors during a handshake that say the peer went away rather than that the
# two sides cannot agree: the core reconnects and no error is kept.
_CURABLE_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


class _Tls:
    """One connection's TLS state: the SSLObject, its two memory buffers, and the plain
    bytes queued before the handshake completed (sent once it has)."""

    __slots__ = ("early", "incoming", "obj", "outgoing", "server_hostname")

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.server_hostname = server_hostname
        self.early = bytearray()
        self.obj = context.wrap_bio(
            self.incoming, self.outgoing, server_side=False, server_hostname=server_hostname
        )


class _Sock:
    __slots__ = ("address", "connected", "node_id", "out", "sock", "tcp_up", "tls")

    def __init__(self, node_id: int, sock: socket.socket, address: str, tls: _Tls | None) -> None:
        self.node_id = node_id
        self.sock = sock
        self.address = address
        self.tls = tls
        #: The TCP connect finished.
        self.tcp_up = False
        #: The core was told connection_made (after the handshake with TLS).
        self.connected = False
        #: Bytes for the socket (already encrypted with TLS).
        self.out = bytearray()


class BlockingDriver:
    """Pumps ``core`` over TCP, or TLS when ``ssl_context`` is given.

    ``ssl_context`` verifies the brokers; build it with
    ``ssl.create_default_context(cafile=...)`` (certificate and host name
    checks on).  ``server_hostname`` is the name checked against every
    broker's certificate (and sent as SNI); by default it is the host the
    core asked to connect to.  ``clock`` is ``time.monotonic`` unless a test
    swaps it.

    :attr:`errors` collects the transport failures that reconnecting cannot
    cure (a :class:`TlsError` per failed handshake, with the reason ``ssl``
    gave); the core only learns that the connection was lost.  Whoever
    surfaces them to the user may clear the list.
    """

    def __init__(
        self,
        core: DrivenCore,
        clock: Callable[[], float] = time.monotonic,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.core = core
        self.clock = clock
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        #: Failures reconnecting cannot cure (TransportError subclasses), oldest first.
        self.errors: list[KafkaSansioError] = []
        self._sel = selectors.DefaultSelector()
        self._socks: dict[int, _Sock] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self.closed = False

    # ------------------------------------------------------------ public

    def run_once(self, timeout: float) -> None:
        """Execute the core's commands, wait for I/O or its timer (at most ``timeout``), react."""
        self._execute()
        timer = self.core.get_timer()
        wait = timeout if timer is None else min(timeout, timer - self.clock())
        for key, mask in self._sel.select(max(0.0, wait)):
            entry = key.data
            if entry is None:
                self._drain_wakeups()
                continue
            assert isinstance(entry, _Sock)
            if mask & selectors.EVENT_WRITE and self._socks.get(entry.node_id) is entry:
                self._writable(entry)
            if mask & selectors.EVENT_READ and self._socks.get(entry.node_id) is entry:
                self._readable(entry)
        timer = self.core.get_timer()
        if timer is not None and self.clock() >= timer:
            self.core.handle_timer(self.clock())
        self._execute()

    def flush(self) -> None:
        """Carry out what the core queued (open, send, close) without waiting.

        Call it after any call into the core that may queue requests, above
        all after ``poll``: handing records out queues the next fetch, which
        should leave before the caller starts processing the records.
        """
        self._execute()

    def run_until(self, condition: Callable[[], object], timeout: float | None = None) -> bool:
        """Pump until ``condition()`` is true; False if ``timeout`` seconds pass first."""
        deadline = None if timeout is None else self.clock() + timeout
        while not condition():
            if self.closed:
                return False
            remaining = 1.0 if deadline is None else deadline - self.clock()
            if remaining <= 0:
                return False
            self.run_once(min(remaining, 1.0))
        return True

    def wakeup(self) -> None:
        """Interrupt a wait in :meth:`run_once`; safe from any thread."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def close(self) -> None:
        """Close every socket (the core is not told: close it first).

        Bytes already queued (an acks=0 produce, a LeaveGroup) are sent first,
        each socket taking at most a few seconds.
        """
        self.closed = True
        for node_id in list(self._socks):
            self._drop(node_id, graceful=True)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    # ------------------------------------------------------------ internals

    def _execute(self) -> None:
        for cmd in self.core.commands():
            if isinstance(cmd, OpenConnection):
                self._open(cmd)
            elif isinstance(cmd, SendData):
                entry = self._socks.get(cmd.node_id)
                if entry is not None:
                    self._queue(entry, cmd.data)
            elif isinstance(cmd, CloseConnection):
                self._drop(cmd.node_id, graceful=True)

    def _queue(self, entry: _Sock, data: bytes) -> None:
        """Add the core's bytes to the socket's write buffer (encrypting them with TLS)."""
        if entry.tls is None:
            entry.out += data
        elif not entry.connected:
            entry.tls.early += data  # the SSLObject takes application data after the handshake
            return
        elif not self._encrypt(entry, data):
            return
        if entry.connected:
            self._send(entry)

    def _encrypt(self, entry: _Sock, data: bytes | bytearray) -> bool:
        """Encrypt ``data`` onto the write buffer; False (connection lost) if TLS refuses."""
        tls = entry.tls
        assert tls is not None
        view = memoryview(data)
        try:
            while view:
                view = view[tls.obj.write(view) :]
        except ssl.SSLError:
            self._lost(entry)
            return False
        entry.out += tls.outgoing.read()
        return True

    def _open(self, cmd: OpenConnection) -> None:
        self._drop(cmd.node_id)
        try:
            infos = socket.getaddrinfo(cmd.host, cmd.port, type=socket.SOCK_STREAM)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
        except OSError:
            self.core.connection_lost(cmd.node_id, self.clock())
            return
        tls = None
        if self.ssl_context is not None:
            hostname = self.server_hostname or cmd.host
            try:
                tls = _Tls(self.ssl_context, hostname)
            except (ssl.SSLError, ValueError) as exc:
                # A context that cannot make a client connection for this name.
                sock.close()
                self._tls_failed(cmd.node_id, f"{cmd.host}:{cmd.port}", hostname, exc)
                self.core.connection_lost(cmd.node_id, self.clock())
                return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            self.core.connection_lost(cmd.node_id, self.clock())
            return
        entry = _Sock(cmd.node_id, sock, f"{cmd.host}:{cmd.port}", tls)
        self._socks[cmd.node_id] = entry
        self._sel.register(sock, selectors.EVENT_WRITE, entry)

    def _writable(self, entry: _Sock) -> None:
        if not entry.tcp_up:
            error = entry.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self._lost(entry)
                return
            entry.tcp_up = True
            if entry.tls is None:
                self._established(entry)
            else:
                self._handshake(entry)
            return
        self._send(entry)

    def _send(self, entry: _Sock) -> None:
        """Write as much of the buffer as the socket takes; watch for writability if not all."""
        while entry.out:
            try:
                sent = entry.sock.send(entry.out)
            except BlockingIOError:
                break
            except OSError:
                self._lost(entry)
                return
            del entry.out[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if entry.out else 0)
        self._sel.modify(entry.sock, events, entry)

    def _established(self, entry: _Sock) -> None:
        """The connection is ready for Kafka bytes: tell the core and send what it queues."""
        entry.connected = True
        self._send(entry)
        if self._socks.get(entry.node_id) is not entry:
            return  # the write of the last handshake bytes failed; the core knows
        self.core.connection_made(entry.node_id, self.clock())
        self._execute()

    def _handshake(self, entry: _Sock) -> None:
        """Advance the TLS handshake with what the buffers hold."""
        tls = entry.tls
        assert tls is not None
        try:
            tls.obj.do_handshake()
        except ssl.SSLWantReadError:
            entry.out += tls.outgoing.read()
            self._send(entry)
            return
        except _CURABLE_TLS:
            self._lost(entry)
            return
        except ssl.SSLError as exc:
            self._tls_failed(entry.node_id, entry.address, tls.server_hostname, exc)
            self._lost(entry)
            return
        entry.out += tls.outgoing.read()
        early, tls.early = tls.early, bytearray()
        if early and not self._encrypt(entry, early):
            return
        self._established(entry)
        if self._socks.get(entry.node_id) is entry and tls.incoming.pending:
            self._decrypt(entry, eof=False)  # records that came with the last handshake bytes

    def _tls_failed(self, node_id: int, address: str, hostname: str, exc: Exception) -> None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or str(exc)
        elif isinstance(exc, ssl.SSLError):
            reason = exc.reason or str(exc)
        else:
            reason = str(exc)
        error = TlsError(
            f"TLS handshake with node {node_id} at {address} (checked as {hostname!r}) "
            f"failed: {reason}"
        )
        error.__cause__ = exc
        self.errors.append(error)

    def _readable(self, entry: _Sock) -> None:
        try:
            data = entry.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if entry.tls is None:
            if not data:
                self._lost(entry)
                return
            self.core.data_received(entry.node_id, data, self.clock())
            return
        if data:
            entry.tls.incoming.write(data)
        else:
            entry.tls.incoming.write_eof()
        if not entry.connected:
            self._handshake(entry)
            if not data and self._socks.get(entry.node_id) is entry:
                self._lost(entry)  # EOF while the handshake still waits for bytes
            return
        self._decrypt(entry, eof=not data)

    def _decrypt(self, entry: _Sock, eof: bool) -> None:
        """Hand the core every whole TLS record received; lose the connection at its end."""
        tls = entry.tls
        assert tls is not None
        chunks = []
        ended = eof
        while True:
            try:
                chunk = tls.obj.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError:  # close_notify, a truncated stream or a corrupt record
                ended = True
                break
            if not chunk:
                ended = True
                break
            chunks.append(chunk)
        if chunks:
            self.core.data_received(entry.node_id, b"".join(chunks), self.clock())
        if self._socks.get(entry.node_id) is not entry:
            return
        if ended:
            self._lost(entry)
            return
        pending = tls.outgoing.read()  # post-handshake messages (key updates) to answer
        if pending:
            entry.out += pending
            self._send(entry)

    def _lost(self, entry: _Sock) -> None:
        self._drop(entry.node_id)
        self.core.connection_lost(entry.node_id, self.clock())

    def _drop(self, node_id: int, *, graceful: bool = False) -> None:
        entry = self._socks.pop(node_id, None)
        if entry is not None:
            self._sel.unregister(entry.sock)
            if graceful and entry.connected and entry.out:
                # The core closed a connection it had queued bytes for (an acks=0
                # produce, a LeaveGroup): let them go first, within a bound.
                with contextlib.suppress(OSError):
                    entry.sock.settimeout(_CLOSE_LINGER)
                    entry.sock.sendall(entry.out)
            entry.sock.close()

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
