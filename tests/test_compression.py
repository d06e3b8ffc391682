"""The codec registry: round trips, interop framings, corrupt input, bombs, missing codecs."""

from __future__ import annotations

import os
import struct
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sansio import _compression
from kafka_sansio._compression import (
    CODEC_GZIP,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_SNAPPY,
    CODEC_ZSTD,
    codec_available,
    codec_id_for,
    compress,
    decompress,
    get_codec,
    register_codec,
)
from kafka_sansio._errors import (
    CorruptRecordError,
    DecompressionLimitError,
    LocalProtocolError,
    MissingCodecError,
    RemoteProtocolError,
)

ALL = [CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD]
COMPRESSED = [CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD]


def test_names_and_ids() -> None:
    assert [get_codec(c).name for c in ALL] == ["none", "gzip", "snappy", "lz4", "zstd"]
    assert codec_id_for("ZSTD") == CODEC_ZSTD
    assert codec_id_for(CODEC_LZ4) == CODEC_LZ4
    with pytest.raises(LocalProtocolError):
        codec_id_for("brotli")
    with pytest.raises(CorruptRecordError):
        get_codec(6)
    assert all(codec_available(c) for c in ALL)


@pytest.mark.parametrize("codec", ALL)
@given(data=st.binary(max_size=100_000))
@settings(max_examples=30, deadline=None)
def test_round_trip(codec: int, data: bytes) -> None:
    assert decompress(codec, compress(codec, data)) == data


@pytest.mark.parametrize("codec", ALL)
def test_large_round_trip_and_exact_limit(codec: int) -> None:
    data = os.urandom(1000) * 200  # several xerial / lz4 blocks
    packed = compress(codec, data)
    assert decompress(codec, packed, len(data)) == data
    with pytest.raises(DecompressionLimitError) as info:
        decompress(codec, packed, len(data) - 1)
    assert info.value.limit == len(data) - 1


def test_snappy_xerial_layout_and_raw_fallback() -> None:
    cramjam = pytest.importorskip("cramjam")
    data = b"kafka " * 10_000
    packed = compress(CODEC_SNAPPY, data)
    assert packed[:8] == b"\x82SNAPPY\x00"
    assert struct.unpack(">ii", packed[8:16]) == (1, 1)
    (first,) = struct.unpack(">i", packed[16:20])
    assert bytes(cramjam.snappy.decompress_raw(packed[20 : 20 + first])) == data[: 32 * 1024]
    # Plain raw snappy (no xerial header) is accepted too.
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert decompress(CODEC_SNAPPY, raw) == data


def test_gzip_is_gzip_and_concatenated_members() -> None:
    packed = compress(CODEC_GZIP, b"hello")
    assert packed[:2] == b"\x1f\x8b"
    assert zlib.decompress(packed, 31) == b"hello"
    assert decompress(CODEC_GZIP, packed + compress(CODEC_GZIP, b" world")) == b"hello world"


def test_lz4_is_a_standard_frame() -> None:
    frame = pytest.importorskip("lz4.frame")
    data = b"x" * 100_000 + os.urandom(100)
    assert frame.decompress(compress(CODEC_LZ4, data)) == data
    assert decompress(CODEC_LZ4, frame.compress(data)) == data


@pytest.mark.parametrize("codec", COMPRESSED)
@given(junk=st.binary(min_size=1, max_size=300))
@settings(max_examples=150, deadline=None)
def test_garbage_raises_remote_protocol_error_only(codec: int, junk: bytes) -> None:
    # Any other exception type fails the test.
    try:
        out = decompress(codec, junk, 1 << 20)
    except RemoteProtocolError:
        return
    assert isinstance(out, bytes)
    assert len(out) <= 1 << 20


@pytest.mark.parametrize("codec", COMPRESSED)
def test_truncated_stream_is_corrupt(codec: int) -> None:
    packed = compress(codec, os.urandom(300_000))
    for cut in (1, 7, len(packed) // 2, len(packed) - 1):
        with pytest.raises(CorruptRecordError):
            decompress(codec, packed[:cut])


def test_zstd_several_frames_and_trailing_bytes() -> None:
    a, b = os.urandom(70_000), b"z" * 500_000
    assert decompress(CODEC_ZSTD, compress(CODEC_ZSTD, a) + compress(CODEC_ZSTD, b)) == a + b
    with pytest.raises(CorruptRecordError):
        decompress(CODEC_ZSTD, compress(CODEC_ZSTD, a) + b"junk")
    with pytest.raises(DecompressionLimitError):
        decompress(CODEC_ZSTD, compress(CODEC_ZSTD, a) + compress(CODEC_ZSTD, b), 500_000)


# -- bombs -----------------------------------------------------------------------

EXPANDED = 256 * 1024 * 1024  # what each bomb would expand to
LIMIT = 1024 * 1024


def _chunks() -> Iterator[bytes]:
    zero = bytes(4 * 1024 * 1024)
    for _ in range(EXPANDED // len(zero)):
        yield zero


def _gzip_bomb() -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(c.compress(chunk) for chunk in _chunks()) + c.flush()


def _zstd_bomb() -> bytes:
    zstd = pytest.importorskip("zstandard")
    c = zstd.ZstdCompressor(level=3).compressobj()
    out: bytes = b"".join(c.compress(chunk) for chunk in _chunks()) + c.flush()
    return out


def _lz4_bomb() -> bytes:
    frame = pytest.importorskip("lz4.frame")
    c = frame.LZ4FrameCompressor()
    out: bytes = c.begin() + b"".join(c.compress(chunk) for chunk in _chunks()) + c.flush()
    return out


def _snappy_xerial_bomb() -> bytes:
    cramjam = pytest.importorskip("cramjam")
    block = bytes(cramjam.snappy.compress_raw(bytes(32 * 1024)))
    framed = struct.pack(">i", len(block)) + block
    return b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + framed * (EXPANDED // (32 * 1024))


def _snappy_lying_header() -> bytes:
    # Raw snappy announcing 2**31 bytes in its length varint, followed by a few literals.
    return bytes([0x80, 0x80, 0x80, 0x80, 0x08]) + b"\x00a"


BOMBS: list[tuple[int, Callable[[], bytes]]] = [
    (CODEC_GZIP, _gzip_bomb),
    (CODEC_ZSTD, _zstd_bomb),
    (CODEC_LZ4, _lz4_bomb),
    (CODEC_SNAPPY, _snappy_xerial_bomb),
    (CODEC_SNAPPY, _snappy_lying_header),
]


@pytest.mark.parametrize(("codec", "make"), BOMBS, ids=lambda x: getattr(x, "__name__", str(x)))
def test_bomb_refused_without_allocating_it(codec: int, make: Callable[[], bytes]) -> None:
    bomb = make()
    assert len(bomb) < EXPANDED // 16
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionLimitError):
            decompress(codec, bomb, LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Peak Python allocation stays within a few times the limit, far below the expansion.
    assert peak < 8 * LIMIT, peak


# -- registry ----------------------------------------------------------------------


def test_missing_codec_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    with pytest.raises(MissingCodecError) as info:
        decompress(CODEC_LZ4, b"\x04\x22\x4d\x18")
    assert info.value.codec == "lz4"
    assert info.value.extra == "compression"
    assert not codec_available("lz4")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(MissingCodecError):
        compress(CODEC_ZSTD, b"x")


def test_register_custom_codec() -> None:
    def enc(data: bytes) -> bytes:
        return bytes(b ^ 0x5A for b in data)

    def dec(data: bytes, limit: int) -> bytes:
        if len(data) > limit:
            raise DecompressionLimitError(limit)
        if data[:1] == b"!":
            raise ValueError("library specific failure")
        return bytes(b ^ 0x5A for b in data)

    try:
        codec = register_codec(6, "xor", enc, dec, extra="xor")
        assert codec.codec_id == 6 and get_codec(6) is codec
        assert codec_id_for("xor") == 6
        assert decompress(6, compress(6, b"abc")) == b"abc"
        with pytest.raises(CorruptRecordError, match="xor decompression failed"):
            decompress(6, b"!x")
        with pytest.raises(DecompressionLimitError):
            decompress(6, b"abcd", 3)
        with pytest.raises(LocalProtocolError):
            register_codec(8, "bad", enc, dec)
    finally:
        _compression._REGISTRY.pop(6, None)
        _compression._BY_NAME.pop("xor", None)


def test_registry_checks_what_a_custom_codec_returns() -> None:
    try:
        register_codec(7, "liar", lambda d: d, lambda d, limit: d * 10)
        with pytest.raises(DecompressionLimitError):
            decompress(7, b"abc", 20)
    finally:
        _compression._REGISTRY.pop(7, None)
        _compression._BY_NAME.pop("liar", None)


def test_replacing_a_codec_and_wrapped_failures() -> None:
    original = get_codec(CODEC_GZIP)

    def bad_compress(data: bytes) -> bytes:
        raise ValueError("cannot")

    def out_of_memory(data: bytes, limit: int) -> bytes:
        raise MemoryError

    try:
        register_codec(CODEC_GZIP, "gzip-test", bad_compress, out_of_memory)
        assert codec_id_for("gzip-test") == CODEC_GZIP
        with pytest.raises(LocalProtocolError):
            codec_id_for("gzip")  # the replaced codec's name is gone
        with pytest.raises(LocalProtocolError, match="compression failed"):
            compress(CODEC_GZIP, b"x")
        with pytest.raises(DecompressionLimitError):
            decompress(CODEC_GZIP, b"x", 10)
        register_codec(CODEC_GZIP, "gzip-test", bad_compress, lambda d, limit: bytearray(d))
        out = decompress(CODEC_GZIP, b"abc")
        assert type(out) is bytes and out == b"abc"
    finally:
        register_codec(
            original.codec_id,
            original.name,
            original.compress,
            original.decompress,
            extra=original.extra,
        )
        _compression._BY_NAME.pop("gzip-test", None)
    assert get_codec(CODEC_GZIP).name == "gzip" and codec_id_for("gzip") == CODEC_GZIP
    with pytest.raises(LocalProtocolError):
        codec_id_for(6)


def test_xerial_framing_errors() -> None:
    pytest.importorskip("cramjam")
    header = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    for bad in (header[:12], header + b"\x00\x00", header + struct.pack(">i", 50) + b"abc"):
        with pytest.raises(CorruptRecordError):
            decompress(CODEC_SNAPPY, bad)
    assert decompress(CODEC_SNAPPY, header) == b""
