"""A tiny blocking-socket Kafka client for tests, built on the codec's header helpers.

Not part of the package: real transports live in ``kafka_sansio.transports``.
One request at a time; each answer is checked against the correlation id.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any

from kafka_sansio import protocol
from kafka_sansio._framing import frame


class KafkaWire:
    """``KafkaWire(host, port).request(message, version) -> response``."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str | None = "kafka-sansio-tests",
        timeout: float = 30.0,
        max_frame_size: int = 64 * 1024 * 1024,
    ) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.client_id = client_id
        self.max_frame_size = max_frame_size
        self._correlation_id = 0
        self._buffer = bytearray()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> KafkaWire:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, message: protocol.Message, version: int) -> int:
        """Send *message* at *version*; return its correlation id."""
        self._correlation_id += 1
        payload = protocol.encode_request(message, version, self._correlation_id, self.client_id)
        self.sock.sendall(frame(payload))
        return self._correlation_id

    def receive(self) -> bytes:
        """Block until one whole response frame arrived; return its payload."""
        while True:
            payload, used = protocol.read_frame(self._buffer, self.max_frame_size)
            if payload is not None:
                del self._buffer[:used]
                return payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self._buffer += chunk

    def request(self, message: protocol.Message, version: int) -> Any:
        """Send a request and return the decoded response body."""
        correlation_id = self.send(message, version)
        payload = self.receive()
        header, response = protocol.decode_response(message.API_KEY, version, payload)
        assert header.correlation_id == correlation_id, (header.correlation_id, correlation_id)
        return response

    def api_versions(self) -> dict[int, tuple[int, int]]:
        """The broker's ``{api_key: (min, max)}``, asked with ApiVersions v0."""
        response = self.request(protocol.request_class(18)(), 0)
        assert response.error_code == 0, response
        return {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
