from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sansio._errors import FrameTooLargeError, RemoteProtocolError
from kafka_sansio._framing import FrameBuffer, frame


@given(
    st.lists(st.binary(max_size=300), max_size=8),
    st.lists(st.integers(1, 700), min_size=1, max_size=20),
    st.booleans(),
)
def test_frames_survive_any_chunking(payloads: list[bytes], sizes: list[int], reuse: bool) -> None:
    """Any split of the stream gives the same frames; ``len`` counts what is left.

    With ``reuse`` each read arrives in one bytearray that the caller overwrites
    afterwards, as a driver reusing its receive buffer would.
    """
    wire = b"".join(frame(p) for p in payloads)
    buf = FrameBuffer()
    out = []
    pos = 0
    i = 0
    while pos < len(wire):
        size = sizes[i % len(sizes)]
        i += 1
        piece = wire[pos : pos + size]
        pos += len(piece)
        if reuse:
            scratch = bytearray(piece)
            buf.feed(scratch)
            scratch[:] = b"\xee" * len(scratch)
        else:
            buf.feed(piece)
        while (f := buf.next_frame()) is not None:
            out.append(f)
        assert len(buf) == pos - sum(4 + len(p) for p in out)
    assert out == payloads
    assert len(buf) == 0


def test_oversized_frame_is_refused_before_its_body_arrives() -> None:
    buf = FrameBuffer(max_frame_size=1000)
    buf.feed((1001).to_bytes(4, "big"))
    with pytest.raises(FrameTooLargeError) as info:
        buf.next_frame()
    assert (info.value.size, info.value.limit) == (1001, 1000)


def test_negative_size_is_a_protocol_error() -> None:
    buf = FrameBuffer()
    buf.feed(b"\xff\xff\xff\xfe")
    with pytest.raises(RemoteProtocolError):
        buf.next_frame()


def test_partial_frame_waits() -> None:
    buf = FrameBuffer()
    buf.feed(frame(b"hello")[:6])
    assert buf.next_frame() is None
    buf.feed(b"llo")
    assert buf.next_frame() == b"hello"
    assert buf.next_frame() is None


def test_a_wide_memoryview_counts_in_bytes() -> None:
    """A memoryview of 4-byte items is fed as its bytes, and counted so."""
    import array

    wire = frame(b"abcd")  # 8 bytes: two 4-byte items
    items = array.array("I")
    items.frombytes(wire)
    buf = FrameBuffer()
    buf.feed(memoryview(items))
    assert len(buf) == 8
    assert buf.next_frame() == b"abcd"
