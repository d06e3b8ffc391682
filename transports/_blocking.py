"""A blocking driver: runs any kafka_sansio core over real sockets with ``selectors``.

It is the whole transport: open the (non-blocking) sockets the core asks
for, write what it queues, feed it what arrives together with
``time.monotonic()``, and fire its one timer.  It owns no Kafka logic.  Use it
from one thread; :meth:`BlockingDriver.wakeup` may be called from another to
interrupt a wait.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections.abc import Callable

from kafka_sansio import CloseConnection, DrivenCore, OpenConnection, SendData

__all__ = ["BlockingDriver"]

_READ_SIZE = 1 << 20


class _Sock:
    __slots__ = ("connected", "node_id", "out", "sock")

    def __init__(self, node_id: int, sock: socket.socket) -> None:
        self.node_id = node_id
        self.sock = sock
        self.connected = False
        self.out = bytearray()


class BlockingDriver:
    """Pumps ``core`` over TCP.  ``clock`` is ``time.monotonic`` unless a test swaps it."""

    def __init__(self, core: DrivenCore, clock: Callable[[], float] = time.monotonic) -> None:
        self.core = core
        self.clock = clock
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
            if mask & selectors.EVENT_WRITE:
                self._writable(entry)
            if mask & selectors.EVENT_READ and entry.node_id in self._socks:
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
        """Close every socket (the core is not told: close it first)."""
        self.closed = True
        for node_id in list(self._socks):
            self._drop(node_id)
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
                    entry.out += cmd.data
                    if entry.connected:
                        self._writable(entry)
            elif isinstance(cmd, CloseConnection):
                self._drop(cmd.node_id)

    def _open(self, cmd: OpenConnection) -> None:
        self._drop(cmd.node_id)
        try:
            infos = socket.getaddrinfo(cmd.host, cmd.port, type=socket.SOCK_STREAM)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
        except OSError:
            self.core.connection_lost(cmd.node_id, self.clock())
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            self.core.connection_lost(cmd.node_id, self.clock())
            return
        entry = _Sock(cmd.node_id, sock)
        self._socks[cmd.node_id] = entry
        self._sel.register(sock, selectors.EVENT_WRITE, entry)

    def _writable(self, entry: _Sock) -> None:
        if not entry.connected:
            error = entry.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self._lost(entry)
                return
            entry.connected = True
            self._sel.modify(entry.sock, selectors.EVENT_READ, entry)
            self.core.connection_made(entry.node_id, self.clock())
            self._execute()
            return
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

    def _readable(self, entry: _Sock) -> None:
        try:
            data = entry.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost(entry)
            return
        self.core.data_received(entry.node_id, data, self.clock())

    def _lost(self, entry: _Sock) -> None:
        self._drop(entry.node_id)
        self.core.connection_lost(entry.node_id, self.clock())

    def _drop(self, node_id: int) -> None:
        entry = self._socks.pop(node_id, None)
        if entry is not None:
            self._sel.unregister(entry.sock)
            entry.sock.close()

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
