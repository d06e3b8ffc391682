"""Kafka's length-prefixed framing.

Every request and response travels as a big-endian int32 size followed by that
many bytes.  :class:`FrameBuffer` collects received bytes and hands out whole
frames; a size above the configured maximum is refused *before* any buffer of
that size exists.
"""

from __future__ import annotations

from ._errors import FrameTooLargeError, RemoteProtocolError

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "FrameBuffer", "frame", "read_frame"]

#: 100 MiB, the Java client's default ``socket.request.max.bytes`` on the broker side.
DEFAULT_MAX_FRAME_SIZE = 104_857_600


def frame(payload: bytes) -> bytes:
    """Return ``payload`` with its 4-byte big-endian size prefix."""
    return len(payload).to_bytes(4, "big") + payload


class FrameBuffer:
    """Accumulates bytes and yields complete frames, in order.

    Call :meth:`feed` with whatever the socket delivered, then call
    :meth:`next_frame` until it returns ``None``.  A frame whose announced size
    is negative or above ``max_frame_size`` raises :class:`FrameTooLargeError`
    (a :class:`RemoteProtocolError`); the connection cannot be trusted after
    that and should be closed.
    """

    __slots__ = ("_buf", "_pos", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_frame_size = max_frame_size

    def __len__(self) -> int:
        """Bytes received but not yet handed out as frames."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        """Append received bytes.  Nothing is parsed until :meth:`next_frame`."""
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> bytes | None:
        """Return the next complete frame's payload (without its prefix), or ``None``."""
        payload, used = read_frame(memoryview(self._buf)[self._pos :], self.max_frame_size)
        if payload is None:
            return None
        self._pos += used
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        return payload


def read_frame(
    buffer: bytes | bytearray | memoryview, max_size: int = DEFAULT_MAX_FRAME_SIZE
) -> tuple[bytes | None, int]:
    """Split one size-prefixed frame off the front of *buffer* (stateless).

    Returns ``(payload, consumed)`` or ``(None, 0)`` if more bytes are needed.
    The size is checked against *max_size* before anything is allocated:
    :class:`FrameTooLargeError` if it is larger, :class:`RemoteProtocolError`
    if it is negative.  Nothing is consumed from *buffer*; drop ``consumed``
    bytes yourself (:class:`FrameBuffer` does that for a stream).
    """
    if len(buffer) < 4:
        return None, 0
    size = int.from_bytes(buffer[:4], "big", signed=True)
    if size < 0:
        raise RemoteProtocolError(f"negative frame size {size}")
    if size > max_size:
        raise FrameTooLargeError(size, max_size)
    if len(buffer) < 4 + size:
        return None, 0
    return bytes(buffer[4 : 4 + size]), 4 + size
