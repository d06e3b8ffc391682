"""Kafka's length-prefixed framing.

Every request and response travels as a big-endian int32 size followed by that
many bytes.  :class:`FrameBuffer` collects received bytes and hands out whole
frames; a size above the configured maximum is refused *before* any buffer of
that size exists.
"""

from __future__ import annotations

from collections import deque

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

    Received chunks are kept as they came and joined once, when their frame
    is complete: a large fetch answer arriving in many reads is copied once,
    not appended to a growing buffer and copied out again.
    """

    __slots__ = ("_chunks", "_size", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.max_frame_size = max_frame_size

    def __len__(self) -> int:
        """Bytes received but not yet handed out as frames."""
        return self._size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes.  Nothing is parsed until :meth:`next_frame`."""
        if data:
            chunk = data if type(data) is bytes else bytes(data)
            self._chunks.append(chunk)
            self._size += len(chunk)

    def next_frame(self) -> bytes | None:
        """Return the next complete frame's payload (without its prefix), or ``None``."""
        if self._size < 4:
            return None
        chunks = self._chunks
        first = chunks[0]
        if len(first) < 4:
            # The size prefix spans reads: put it in one piece (a few bytes).
            first = b"".join(chunks)
            chunks.clear()
            chunks.append(first)
        size = int.from_bytes(first[:4], "big", signed=True)
        if size < 0:
            raise RemoteProtocolError(f"negative frame size {size}")
        if size > self.max_frame_size:
            raise FrameTooLargeError(size, self.max_frame_size)
        need = 4 + size
        if self._size < need:
            return None
        self._size -= need
        if len(first) >= need:
            chunks.popleft()
            if len(first) > need:
                chunks.appendleft(first[need:])
            return first[4:need]
        parts = [chunks.popleft()[4:]]
        got = len(first)
        while got < need:
            chunk = chunks.popleft()
            if got + len(chunk) > need:
                cut = need - got
                chunks.appendleft(chunk[cut:])
                chunk = chunk[:cut]
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)


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
