"""Column decoding of v2 records and RecordList.

``decode_columns_v2`` decodes runs of records laid out alike column by column
(strided slices, C-level maps).  Every test here holds it to a plain
record-by-record reference decoder written below: same columns for any batch,
and a CorruptRecordError exactly where the reference raises one, byte
mutations included.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio import RecordList
from kafka_sansio._errors import CorruptRecordError
from kafka_sansio._records import (
    HEADER_SIZE_V2,
    Columns,
    decode_columns_v2,
    encode_batch,
)
from kafka_sansio.records import Record, RecordDecoder, TimestampType, decode_batch

BASE_TS = 1_700_000_000_000


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise CorruptRecordError("overrun")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if result >> 64:
                raise CorruptRecordError("too big")
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordError("too long")


def _bytes_field(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    n, pos = _varint(buf, pos)
    if n == -1:
        return None, pos
    if n < 0 or pos + n > end:
        raise CorruptRecordError("bad length")
    return buf[pos : pos + n], pos + n


def reference_decode(
    buf: bytes, pos: int, end: int, count: int, base_offset: int, base_ts: int
) -> Columns:
    """The v2 record format read field by field, as the protocol spells it."""
    if count < 0 or count * 7 > end - pos:
        raise CorruptRecordError("count")
    cols: Columns = ([], [], [], [], [])
    for _ in range(count):
        length, pos = _varint(buf, pos)
        rec_end = pos + length
        pos += 1  # attributes
        ts, pos = _varint(buf, pos)
        delta, pos = _varint(buf, pos)
        key, pos = _bytes_field(buf, pos, len(buf))
        if key is None and buf[pos - 1] != 1:
            raise CorruptRecordError("negative key length")
        value, pos = _bytes_field(buf, pos, len(buf))
        if value is None and buf[pos - 1] != 1:
            raise CorruptRecordError("negative value length")
        n, pos = _varint(buf, pos)
        if n < 0 or n > rec_end - pos:
            raise CorruptRecordError("header count")
        headers = []
        for _ in range(n):
            hk, pos = _bytes_field(buf, pos, rec_end)
            if hk is None:
                raise CorruptRecordError("null header key")
            hv, pos = _bytes_field(buf, pos, rec_end)
            headers.append((hk.decode("utf-8", "surrogateescape"), hv))
        if pos != rec_end:
            raise CorruptRecordError("length mismatch")
        for col, item in zip(
            cols, (base_offset + delta, base_ts + ts, key, value, tuple(headers)), strict=True
        ):
            col.append(item)  # type: ignore[attr-defined]
    if pos != end:
        raise CorruptRecordError("left over")
    return cols


def _outcome(decode: Any, buf: bytes, count: int) -> Any:
    try:
        return decode(buf, HEADER_SIZE_V2, len(buf), count, 7, BASE_TS)
    except CorruptRecordError:
        return CorruptRecordError


def _records(
    n: int, key: Any, value: Any, ts_step: int = 0, headers: Any = (), base_offset: int = 7
) -> list[Record]:
    return [
        Record(
            base_offset + i,
            BASE_TS + i * ts_step,
            0,
            key(i) if callable(key) else key,
            value(i) if callable(value) else value,
            headers,
        )
        for i in range(n)
    ]


CASES = {
    "fixed layout": _records(300, b"key", b"v" * 100),
    "no key": _records(300, None, b"v" * 100),
    "no value": _records(300, b"key", None),
    "empty key and value": _records(200, b"", b""),
    "key lengths change": _records(600, lambda i: b"k%d" % i, b"v" * 100),
    "value sizes vary": _records(300, b"key", lambda i: b"v" * (i % 7 * 30)),
    "two-byte timestamps": _records(300, b"key", b"v" * 10, ts_step=3),
    "timestamps change width": _records(300, b"key", b"v" * 10, ts_step=1),
    "long timestamps": _records(100, b"key", b"v" * 10, ts_step=100_000),
    "headers": _records(100, b"key", b"v" * 10, headers=(("h", b"x"),)),
    "big values": _records(50, b"key", b"v" * 5000),
    "past 8192 offsets": _records(8300, None, b"v"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_columns_match_the_reference(name: str) -> None:
    records = CASES[name]
    batch = encode_batch(records, base_offset=7)
    count = len(records)
    expected = reference_decode(batch, HEADER_SIZE_V2, len(batch), count, 7, BASE_TS)
    assert decode_columns_v2(batch, HEADER_SIZE_V2, len(batch), count, 7, BASE_TS) == expected
    assert expected[0] == [r.offset for r in records]
    assert expected[2] == [r.key for r in records]
    assert expected[3] == [r.value for r in records]
    assert decode_batch(batch).records == tuple(records)


def test_offset_gaps_are_not_taken_as_a_run() -> None:
    # Compacted-looking batch: offsets with holes, each record otherwise alike.
    records = [Record(7 + 2 * i, BASE_TS, 0, b"key", b"v" * 50, ()) for i in range(200)]
    batch = encode_batch(records, base_offset=7)
    got = decode_columns_v2(batch, HEADER_SIZE_V2, len(batch), 200, 7, BASE_TS)
    assert got[0] == [r.offset for r in records]


record_st = st.tuples(
    st.sampled_from([0, 1, 2, 3, 30, 70, 100_000]),  # offset gap (mostly 1 below)
    st.sampled_from([0, 0, 1, 40, 70, 9000, 2**40]),  # timestamp step
    st.sampled_from([None, b"", b"k", b"key1", b"k" * 70]),
    st.sampled_from([None, b"", b"v" * 10, b"w" * 10, b"v" * 100, b"v" * 200]),
    st.sampled_from([(), (), (("h", b"x"),), (("h", None),)]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.tuples(record_st, st.integers(1, 90)), min_size=1, max_size=12),
    gap_one=st.booleans(),
)
def test_any_batch_decodes_as_the_reference(
    parts: list[tuple[tuple[Any, ...], int]], gap_one: bool
) -> None:
    """Runs of alike records of random lengths, separated by odd ones."""
    records: list[Record] = []
    offset, ts = 7, BASE_TS
    for (gap, step, key, value, headers), repeat in parts:
        for _ in range(repeat):
            records.append(Record(offset, ts, 0, key, value, headers))
            offset += 1 if gap_one or gap == 0 else gap
            ts += step
    batch = encode_batch(records, base_offset=7)
    count = len(records)
    expected = reference_decode(batch, HEADER_SIZE_V2, len(batch), count, 7, BASE_TS)
    assert decode_columns_v2(batch, HEADER_SIZE_V2, len(batch), count, 7, BASE_TS) == expected
    assert expected[0] == [r.offset for r in records]


@settings(max_examples=400, deadline=None)
@given(
    layout=st.sampled_from(["fixed", "no key", "two-byte ts", "keys change"]),
    spots=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=3),
    count_delta=st.sampled_from([0, 0, 0, -1, 1]),
)
def test_mutated_batches_fail_or_agree_with_the_reference(
    layout: str, spots: list[tuple[int, int]], count_delta: int
) -> None:
    """Any byte changed in the records: both raise CorruptRecordError, or both give the same."""
    records = {
        "fixed": CASES["fixed layout"][:150],
        "no key": CASES["no key"][:150],
        "two-byte ts": CASES["two-byte timestamps"][:150],
        "keys change": CASES["key lengths change"][:150],
    }[layout]
    data = bytearray(encode_batch(records, base_offset=7))
    body = len(data) - HEADER_SIZE_V2
    for where, byte in spots:
        data[HEADER_SIZE_V2 + where % body] = byte
    buf = bytes(data)
    count = len(records) + count_delta
    expected = _outcome(reference_decode, buf, count)
    assert _outcome(decode_columns_v2, buf, count) == expected


@pytest.mark.parametrize(
    "name", ["fixed layout", "no key", "no value", "two-byte timestamps", "key lengths change"]
)
def test_every_byte_of_a_run_record_is_checked(name: str) -> None:
    """Each byte of one record inside a run, set to telling values: the reference's outcome."""
    records = CASES[name][:120]
    batch = encode_batch(records, base_offset=7)
    expected = reference_decode(batch, HEADER_SIZE_V2, len(batch), 120, 7, BASE_TS)
    # Where record 70 starts and ends (offset delta 70: two-byte varint; in a run).
    starts = [HEADER_SIZE_V2]
    pos = HEADER_SIZE_V2
    for _ in range(120):
        length, after = _varint(batch, pos)
        pos = after + length
        starts.append(pos)
    changed = 0
    for where in range(starts[70], starts[71]):
        for byte in {0x00, 0x01, 0x02, 0x7E, 0x7F, 0x80, 0x81, 0xFF, batch[where] ^ 1}:
            if byte == batch[where]:
                continue
            buf = batch[:where] + bytes((byte,)) + batch[where + 1 :]
            want = _outcome(reference_decode, buf, 120)
            assert _outcome(decode_columns_v2, buf, 120) == want, (where - starts[70], byte)
            changed += want != expected
    assert changed > 0


def test_truncated_run_raises() -> None:
    batch = encode_batch(CASES["fixed layout"], base_offset=7)
    with pytest.raises(CorruptRecordError):
        decode_columns_v2(batch, HEADER_SIZE_V2, len(batch) - 40, 300, 7, BASE_TS)
    with pytest.raises(CorruptRecordError):
        decode_columns_v2(batch[:-40], HEADER_SIZE_V2, len(batch) - 40, 300, 7, BASE_TS)


# -- RecordList -----------------------------------------------------------------------


def _list() -> tuple[RecordList, list[Record]]:
    records = _records(10, b"k", lambda i: b"v%d" % i, ts_step=1, base_offset=0)
    return RecordList.from_records(records), records


def test_record_list_reads_like_a_list() -> None:
    rl, records = _list()
    assert len(rl) == 10 and bool(rl)
    assert list(rl) == records
    assert rl == records and records == rl and rl == tuple(records)
    assert rl != records[:-1] and rl != records[::-1]
    assert rl[0] == records[0] and rl[-1] == records[-1]
    assert isinstance(rl[3], Record) and rl[3].value == b"v3"
    assert isinstance(rl[2:5], RecordList) and rl[2:5] == records[2:5]
    assert rl[::2] == records[::2]
    assert rl.index(records[4]) == 4 and records[5] in rl
    assert list(reversed(rl)) == records[::-1]
    with pytest.raises(IndexError):
        rl[10]
    assert not RecordList.from_records([])
    assert repr(rl[:1]) == f"RecordList([{records[0]!r}])"
    assert pickle.loads(pickle.dumps(rl)) == rl
    with pytest.raises(TypeError):
        hash(rl)


def test_record_list_join_keeps_order_and_timestamp_types() -> None:
    rl, records = _list()
    other = [Record(10, BASE_TS, TimestampType.LOG_APPEND_TIME, None, b"x", ())]
    joined = RecordList.join([rl[:4], other, rl[4:]])
    assert joined == records[:4] + other + records[4:]
    assert joined[4].timestamp_type is TimestampType.LOG_APPEND_TIME
    assert RecordList.join([]) == [] and RecordList.join([rl]) is rl


def test_decoder_hands_out_the_same_records_as_columns() -> None:
    records = CASES["key lengths change"]
    batch = encode_batch(records, base_offset=7)
    decoder = RecordDecoder()
    scanned = decoder.scan(batch)
    (ref,) = scanned.batches
    assert decoder.decode_ref_records(scanned.buf, ref) == records
    assert decoder.decode_ref_records(scanned.buf, ref, 500) == records[493:]
    append_time = encode_batch(records[:3], timestamp_type=TimestampType.LOG_APPEND_TIME)
    scanned = decoder.scan(append_time)
    got = decoder.decode_ref_records(scanned.buf, scanned.batches[0])
    assert got == decode_batch(append_time).records
    assert {r.timestamp_type for r in got} == {TimestampType.LOG_APPEND_TIME}
