"""Kafka's length-prefixed framing.

Every request and response travels as a big-endian int32 size followed by that
many bytes.  :class:`FrameBuffer` collects received bytes and hands out whole
frames; a size above the configured maximum is refused *before* any buffer of
that size exists.
"""

from __future__ import annotations

from ._errors import FrameTooLargeError, RemoteProtocolError

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "FrameBuffer", "frame"]

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
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 4:
            return None
        size = int.from_bytes(buf[pos : pos + 4], "big", signed=True)
        if size < 0:
            raise RemoteProtocolError(f"negative frame size {size}")
        if size > self.max_frame_size:
            raise FrameTooLargeError(size, self.max_frame_size)
        end = pos + 4 + size
        if len(buf) < end:
            return None
        payload = bytes(buf[pos + 4 : end])
        if end == len(buf):
            buf.clear()
            self._pos = 0
        else:
            self._pos = end
        return payload
