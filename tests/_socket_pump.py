"""A minimal blocking driver for core objects, for tests against the real broker.

It does what a transport does (open the sockets the core asks for, feed it
bytes and ``now``, arm its timer) in the simplest way, so that core behaviour
can be checked against Apache Kafka independently of the adapters.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

from kafka_sansio._client import CloseConnection, OpenConnection, SendData


class SocketPump:
    def __init__(self, core: Any) -> None:
        self.core = core
        self.sel = selectors.DefaultSelector()
        self.socks: dict[int, socket.socket] = {}

    def _execute(self) -> None:
        for cmd in self.core.commands():
            if isinstance(cmd, OpenConnection):
                try:
                    sock = socket.create_connection((cmd.host, cmd.port), timeout=5)
                except OSError:
                    self.core.connection_lost(cmd.node_id, time.monotonic())
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setblocking(False)
                self.socks[cmd.node_id] = sock
                self.sel.register(sock, selectors.EVENT_READ, cmd.node_id)
                self.core.connection_made(cmd.node_id, time.monotonic())
            elif isinstance(cmd, SendData):
                sock = self.socks.get(cmd.node_id)
                if sock is None:
                    continue
                sock.setblocking(True)
                try:
                    sock.sendall(cmd.data)
                except OSError:
                    self._drop(cmd.node_id)
                    self.core.connection_lost(cmd.node_id, time.monotonic())
                    continue
                sock.setblocking(False)
            elif isinstance(cmd, CloseConnection):
                self._drop(cmd.node_id)

    def _drop(self, node_id: int) -> None:
        sock = self.socks.pop(node_id, None)
        if sock is not None:
            self.sel.unregister(sock)
            sock.close()

    def step(self, max_wait: float) -> None:
        """Execute commands, wait for I/O or the timer (at most max_wait), feed what came."""
        self._execute()
        timer = self.core.get_timer()
        wait = max_wait if timer is None else max(0.0, min(max_wait, timer - time.monotonic()))
        if self.socks:
            for key, _ in self.sel.select(wait):
                node_id = key.data
                try:
                    data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:
                    self._drop(node_id)
                    self.core.connection_lost(node_id, time.monotonic())
                else:
                    self.core.data_received(node_id, data, time.monotonic())
        else:
            time.sleep(wait)
        timer = self.core.get_timer()
        if timer is not None and time.monotonic() >= timer:
            self.core.handle_timer(time.monotonic())
        self._execute()

    def until(self, cond: Callable[[], bool], timeout: float = 30.0) -> None:
        """Step until ``cond()`` holds; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            self.step(min(0.2, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        for node_id in list(self.socks):
            self._drop(node_id)
