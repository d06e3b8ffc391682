"""Serve the in-memory broker model on loopback TCP ports: a Kafka cluster for tests.

:class:`MockBroker` binds one listening socket per broker of a
:class:`~kafka_sansio.testing.ModelCluster` (free ports picked by the OS),
makes the model advertise exactly those addresses, and moves bytes between
client sockets and the model's :class:`ModelConnection` objects with
``selectors`` and ``time.monotonic()``, firing each connection's timer (fetch
``max_wait``, injected delays) when it is due.  Any Kafka client can connect::

    with MockBroker(brokers=3, topics={"t": 2}) as bootstrap:
        ...  # "127.0.0.1:PORT" of broker 1; the others are in the metadata

In a ``with`` block (or after :meth:`start`) a background thread serves;
:meth:`serve_forever` serves in the calling thread (the CLI's
``mock-broker``).  The model is not thread-safe: while the thread runs,
change it only inside :meth:`locked` (``with broker.locked() as cluster:``),
which also wakes the loop so answers a change completes go out at once.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from kafka_sansio.testing import ModelCluster, ModelConnection, ModelConnectionRefused

__all__ = ["MockBroker"]

_READ_SIZE = 1 << 20


class _Client:
    __slots__ = ("conn", "out", "sock")

    def __init__(self, sock: socket.socket, conn: ModelConnection) -> None:
        self.sock = sock
        self.conn = conn
        self.out = bytearray()


class MockBroker:
    """The model cluster ``cluster`` (or a new one with ``brokers`` nodes) on TCP.

    ``topics`` maps names to partition counts to create before serving.
    Ports are bound in the constructor, so :attr:`bootstrap` is valid at once:
    free ones chosen by the system, or ``port_base``, ``port_base + 1``, ...
    A broker stopped in the model (``stop_broker``) stops listening, so
    clients see their connections refused, and listens on the same port
    again once started.
    """

    def __init__(
        self,
        cluster: ModelCluster | None = None,
        *,
        brokers: int = 1,
        host: str = "127.0.0.1",
        topics: dict[str, int] | None = None,
        port_base: int = 0,
    ) -> None:
        self.cluster = cluster if cluster is not None else ModelCluster(brokers=brokers, host=host)
        self._sel = selectors.DefaultSelector()
        self._listeners: dict[int, socket.socket] = {}
        self._clients: dict[socket.socket, _Client] = {}
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            for i, (node_id, info) in enumerate(sorted(self.cluster.brokers.items())):
                listener = self._listen(node_id, host, port_base + i if port_base else 0)
                # The model advertises the address clients can really reach.
                info.host, info.port = listener.getsockname()[:2]
        except OSError:
            self.close()
            raise
        for name, partitions in (topics or {}).items():
            self.cluster.create_topic(name, partitions)

    # ------------------------------------------------------------ public

    @property
    def bootstrap(self) -> str:
        """``host:port`` of every broker, comma separated (clients need only one)."""
        return ",".join(f"{b.host}:{b.port}" for b in self.cluster.brokers.values())

    def __enter__(self) -> str:
        self.start()
        return self.bootstrap

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Serve from a daemon thread until :meth:`close`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, daemon=True)
            self._thread.start()

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`close` (from another thread or a signal handler)."""
        while not self._stop:
            self.serve_once(1.0)

    @contextlib.contextmanager
    def locked(self) -> Iterator[ModelCluster]:
        """Hold the serving loop off while the caller changes the model; answers go out after."""
        with self._lock:
            yield self.cluster
            self._flush_all(time.monotonic())
            self._follow_brokers()
        self._wakeup()

    def close(self) -> None:
        """Stop serving and close every socket."""
        self._stop = True
        self._wakeup()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        with self._lock:
            for client in list(self._clients.values()):
                self._drop(client)
            for listener in self._listeners.values():
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(listener)
                listener.close()
            self._listeners.clear()
            with contextlib.suppress(OSError):
                self._sel.close()
            self._wake_r.close()
            self._wake_w.close()

    # ------------------------------------------------------------ the loop

    def serve_once(self, timeout: float) -> None:
        """Wait for I/O or the next model timer (at most ``timeout`` seconds) and react."""
        with self._lock:
            timer = self._next_timer()
        wait = timeout if timer is None else max(0.0, min(timeout, timer - time.monotonic()))
        try:
            ready = self._sel.select(wait)
        except (OSError, ValueError):
            if self._stop:
                return
            raise
        with self._lock:
            if self._stop:
                return
            now = time.monotonic()
            for key, mask in ready:
                data: Any = key.data
                if data is None:
                    self._drain_wakeups()
                elif isinstance(data, int):
                    self._accept(key.fileobj, data, now)  # type: ignore[arg-type]
                elif isinstance(data, _Client) and data.sock in self._clients:
                    if mask & selectors.EVENT_READ:
                        self._readable(data, now)
                    if mask & selectors.EVENT_WRITE and data.sock in self._clients:
                        self._write(data)
            now = time.monotonic()
            for client in list(self._clients.values()):
                timer = client.conn.get_timer()
                if timer is not None and now >= timer:
                    try:
                        client.conn.handle_timer(now)
                    except Exception as exc:
                        print(f"mock-broker: dropping a connection: {exc!r}", file=sys.stderr)
                        self._drop(client)
            self._flush_all(now)
            self._follow_brokers()

    def _listen(self, node_id: int, host: str, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        self._listeners[node_id] = listener
        self._sel.register(listener, selectors.EVENT_READ, node_id)
        return listener

    def _follow_brokers(self) -> None:
        """Listen exactly for the brokers the model has running."""
        for node_id, info in self.cluster.brokers.items():
            listener = self._listeners.get(node_id)
            if not info.alive and listener is not None:
                self._sel.unregister(listener)
                listener.close()
                del self._listeners[node_id]
            elif info.alive and listener is None:
                try:
                    self._listen(node_id, info.host, info.port)
                except OSError as exc:  # the port was taken meanwhile: try again later
                    print(f"mock-broker: broker {node_id} cannot listen: {exc}", file=sys.stderr)

    def _next_timer(self) -> float | None:
        timers = [t for c in self._clients.values() if (t := c.conn.get_timer()) is not None]
        return min(timers) if timers else None

    def _accept(self, listener: socket.socket, node_id: int, now: float) -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        try:
            conn = self.cluster.accept(node_id, now)
        except ModelConnectionRefused:
            sock.close()  # a stopped broker: the client sees the connection fail
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(sock, conn)
        self._clients[sock] = client
        self._sel.register(sock, selectors.EVENT_READ, client)

    def _readable(self, client: _Client, now: float) -> None:
        try:
            data = client.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            client.conn.close()
            self._drop(client)
            return
        try:
            client.conn.receive(data, now)
        except Exception as exc:  # a model bug must not take the whole server down
            print(f"mock-broker: dropping a connection: {exc!r}", file=sys.stderr)
            self._drop(client)

    def _flush_all(self, now: float) -> None:
        """Collect every connection's answers (one request may complete others' fetches)."""
        for client in list(self._clients.values()):
            client.out += client.conn.data_to_send()
            self._write(client)

    def _write(self, client: _Client) -> None:
        while client.out:
            try:
                sent = client.sock.send(client.out)
            except BlockingIOError:
                break
            except OSError:
                client.conn.close()
                self._drop(client)
                return
            del client.out[:sent]
        if client.conn.closed and not client.out:
            self._drop(client)  # the broker hung up: after its last bytes, close
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.out else 0)
        self._sel.modify(client.sock, events, client)

    def _drop(self, client: _Client) -> None:
        if self._clients.pop(client.sock, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(client.sock)
        client.sock.close()
        if not client.conn.closed:
            client.conn.close()

    def _wakeup(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
