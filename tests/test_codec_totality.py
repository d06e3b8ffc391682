"""Decoding is total: any input decodes or raises RemoteProtocolError.

Covers every truncation of valid encodings of every API at every version,
trailing garbage, corrupted lengths and counts far larger than the buffer,
and frame-size limits (checked before anything is allocated).
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio import FrameTooLargeError, RemoteProtocolError, protocol
from kafka_sansio._messages import APIS
from kafka_sansio._wire import read_tags, read_uvarint, write_uvarint
from kafka_sansio.testing import strategies as ks

CLASSES = [
    pytest.param(key, side, id=f"{APIS[key][2 if side == 'request' else 3]}")
    for key in sorted(APIS)
    for side in ("request", "response")
]

FEW = settings(
    max_examples=3,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _decodes_or_remote_error(cls: type[protocol.Message], data: bytes, version: int) -> bool:
    """True if *data* decoded; False if it raised RemoteProtocolError; anything else fails."""
    try:
        cls.decode(data, version)
    except RemoteProtocolError:
        return False
    return True


@pytest.mark.parametrize(("key", "side"), CLASSES)
@FEW
@given(data=st.data())
def test_truncations_and_trailing_bytes_are_rejected(
    key: int, side: str, data: st.DataObject
) -> None:
    cls = protocol.request_class(key) if side == "request" else protocol.response_class(key)
    for version in range(cls.MIN_VERSION, cls.MAX_VERSION + 1):
        encoded = data.draw(ks.message(cls, version), label=f"v{version}").encode(version)
        for cut in range(len(encoded)):
            with pytest.raises(RemoteProtocolError):
                cls.decode(encoded[:cut], version)
        with pytest.raises(RemoteProtocolError, match="trailing"):
            cls.decode(encoded + b"\x00", version)
        # corrupt one byte: must still decode or fail cleanly
        if encoded:
            pos = data.draw(st.integers(0, len(encoded) - 1), label="pos")
            byte = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]), label="byte")
            corrupted = encoded[:pos] + bytes([byte]) + encoded[pos + 1 :]
            _decodes_or_remote_error(cls, corrupted, version)


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(sorted(APIS)), st.integers(0, 20), st.binary(max_size=80))
def test_random_bytes_never_escape(key: int, version_hint: int, payload: bytes) -> None:
    for cls in (protocol.request_class(key), protocol.response_class(key)):
        version = cls.MIN_VERSION + version_hint % (cls.MAX_VERSION - cls.MIN_VERSION + 1)
        _decodes_or_remote_error(cls, payload, version)
    with contextlib.suppress(RemoteProtocolError):
        protocol.decode_request(payload)


def test_huge_counts_fail_fast_without_allocating() -> None:
    meta = protocol.response_class(3)
    # v12 (flexible): throttle, then a brokers count of 2**31 as a 5-byte uvarint
    flexible = struct.pack(">i", 0) + write_uvarint(2**31) + b"\x00"
    with pytest.raises(RemoteProtocolError, match="Brokers"):
        meta.decode(flexible, 12)
    # v0 (classic): int32 count 0x7fffffff
    classic = struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 6
    with pytest.raises(RemoteProtocolError, match="Brokers"):
        meta.decode(classic, 0)
    # primitive array: ReplicaNodes count 2**30 inside an otherwise valid partition
    part = struct.pack(">hii", 0, 0, 0) + struct.pack(">i", 2**30) + bytes(8)  # v0: no epoch
    topic = struct.pack(">h", 0) + struct.pack(">h", 1) + b"t" + struct.pack(">i", 1) + part
    body = struct.pack(">i", 0) + struct.pack(">i", 1) + topic
    with pytest.raises(RemoteProtocolError, match="ReplicaNodes"):
        meta.decode(body, 0)
    # a uvarint longer than five bytes
    with pytest.raises(RemoteProtocolError, match="varint"):
        meta.decode(struct.pack(">i", 0) + b"\xff" * 6, 12)


def test_huge_string_and_bytes_lengths() -> None:
    sasl = protocol.request_class(36)  # SaslAuthenticate: AuthBytes is `bytes`
    with pytest.raises(RemoteProtocolError):
        sasl.decode(struct.pack(">i", 2**31 - 1) + b"abc", 0)
    with pytest.raises(RemoteProtocolError):
        sasl.decode(write_uvarint(2**32 - 1) + b"abc\x00", 2)
    meta = protocol.request_class(3)
    with pytest.raises(RemoteProtocolError):
        meta.decode(b"\x02" + write_uvarint(40000) + b"x" * 10 + b"\x00\x00\x00\x00", 9)
    with pytest.raises(RemoteProtocolError):  # invalid UTF-8
        meta.decode(struct.pack(">ih", 1, 2) + b"\xff\xfe", 0)


def test_null_for_non_nullable_fields_is_rejected() -> None:
    meta = protocol.request_class(3)
    with pytest.raises(RemoteProtocolError, match="null"):
        meta.decode(b"\xff\xff\xff\xff", 0)  # topics not nullable in v0
    assert meta.decode(b"\xff\xff\xff\xff", 1).topics is None


def test_tagged_field_buffers() -> None:
    cls = protocol.request_class(1)  # Fetch v12: ClusterId is tag 0
    body = cls().encode(12)[:-1]
    with pytest.raises(RemoteProtocolError, match="size"):
        cls.decode(body + b"\x01\x00\x03\x00\x00\x00", 12)  # tag 0 content shorter than its size
    with pytest.raises(RemoteProtocolError):
        cls.decode(body + b"\x01\x00\x09abc", 12)  # size past the end
    assert read_tags(b"\x00", 0) == ({}, 1)
    with pytest.raises(RemoteProtocolError):
        read_tags(b"\x05\x00\x00", 0)
    assert read_uvarint(b"\x80\x01", 0) == (128, 2)
    with pytest.raises(RemoteProtocolError):
        read_uvarint(b"\x80", 0)


def test_frame_limits_are_checked_before_allocation() -> None:
    with pytest.raises(FrameTooLargeError) as info:
        protocol.read_frame(struct.pack(">i", 2**31 - 1), max_size=1024)
    assert info.value.size == 2**31 - 1 and info.value.limit == 1024
    with pytest.raises(RemoteProtocolError):
        protocol.read_frame(struct.pack(">i", -5))
    assert protocol.read_frame(b"\x00\x00") == (None, 0)
    assert protocol.read_frame(b"\x00\x00\x00\x05abc") == (None, 0)
    assert protocol.read_frame(b"\x00\x00\x00\x03abcdef") == (b"abc", 7)
    payload = protocol.encode_response(protocol.response_class(3)(), 12, 1)
    with pytest.raises(FrameTooLargeError):
        protocol.decode_response(3, 12, payload, max_size=len(payload) - 1)
    with pytest.raises(FrameTooLargeError):
        protocol.decode_request(b"\x00" * 100, max_size=99)
    assert protocol.decode_response(3, 12, payload, max_size=len(payload))[0].correlation_id == 1


def test_response_helpers_reject_garbage() -> None:
    with pytest.raises(RemoteProtocolError):
        protocol.peek_correlation_id(b"\x00")
    with pytest.raises(RemoteProtocolError):
        protocol.decode_response(3, 12, b"\x00\x00\x00\x01")  # header only, body missing
    payload = protocol.encode_response(protocol.response_class(3)(), 12, 1)
    with pytest.raises(RemoteProtocolError, match="trailing"):
        protocol.decode_response(3, 12, payload + b"\x00")
    with pytest.raises(RemoteProtocolError):
        protocol.decode_request(b"\x00\x03")
