"""Bulk decoding of arrays of flat structures (``_wire.UniformReaders``).

An array whose elements all share one shape is read with one precompiled
struct; anything else goes element by element.  These tests check that the
two paths agree on every input - valid, mixed-shape and corrupted - and that
the bulk path really is taken when it should be.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sansio import LocalProtocolError, RemoteProtocolError, protocol
from kafka_sansio._messages import APIS, metadata
from kafka_sansio._messages.metadata import (
    MetadataResponse as Response,
)
from kafka_sansio._messages.metadata import (
    MetadataResponsePartition as Partition,
)
from kafka_sansio._messages.metadata import (
    MetadataResponseTopic as Topic,
)
from kafka_sansio._wire import NO_TAGS, Struct, UniformReaders, uniform_readers
from kafka_sansio.testing import strategies as ks

METADATA: Any = metadata


def _tables(module: Any) -> dict[str, UniformReaders]:
    return {k: v for k, v in vars(module).items() if isinstance(v, UniformReaders)}


class _Never(dict[tuple[int, ...], None]):
    """Stands in for a reader table: never offers a bulk reader."""

    def __missing__(self, key: tuple[int, ...]) -> None:
        return None


class _Counting(dict[tuple[int, ...], Any]):
    """Wraps a reader table and counts the arrays the bulk path decoded."""

    def __init__(self, inner: UniformReaders) -> None:
        super().__init__()
        self.inner = inner
        self.hits = 0

    def __getitem__(self, key: tuple[int, ...]) -> Any:
        reader = self.inner[key]
        if reader is None:
            return None

        def counted(buf: bytes, pos: int, n: int) -> Any:
            result = reader(buf, pos, n)
            if result is not None:
                self.hits += 1
            return result

        return counted


def _outcome(decode: Callable[[], Any]) -> Any:
    try:
        return decode()
    except RemoteProtocolError:
        return RemoteProtocolError


def _both_paths(
    monkeypatch: pytest.MonkeyPatch, module: Any, decode: Callable[[], Any]
) -> tuple[Any, Any]:
    """Decode once with the bulk readers and once element by element."""
    fast = _outcome(decode)
    with monkeypatch.context() as m:
        for name in _tables(module):
            m.setattr(module, name, _Never())
        slow = _outcome(decode)
    return fast, slow


def _partition(i: int, replicas: int, offline: int = 0) -> Partition:
    return Partition(
        error_code=i % 2,
        partition_index=i,
        leader_id=i % 3,
        leader_epoch=7 + i,
        replica_nodes=[(i + r) % 5 for r in range(replicas)],
        isr_nodes=[(i + r) % 5 for r in range(replicas)],
        offline_replicas=list(range(offline)),
    )


def _response(partitions: list[Partition]) -> Response:
    return Response(topics=[Topic(name="t", partitions=partitions)], cluster_id="c")


def test_uniform_array_takes_the_bulk_path(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = _response([_partition(i, 3) for i in range(20)])
    data = msg.encode(12)
    counting = {name: _Counting(table) for name, table in _tables(METADATA).items()}
    for name, table in counting.items():
        monkeypatch.setattr(METADATA, name, table)
    decoded = Response.decode(data, 12)
    assert decoded == msg
    assert sum(t.hits for t in counting.values()) == 1
    assert decoded.encode(12) == data
    first = decoded.topics[0].partitions[0]
    assert type(first) is Partition
    assert first.unknown_tagged_fields is NO_TAGS
    # decoded lists are fresh, mutable and unshared
    first.replica_nodes.append(99)
    assert first.replica_nodes == [0, 1, 2, 99]
    assert decoded.topics[0].partitions[1].replica_nodes == [1, 2, 3]
    assert first.isr_nodes == [0, 1, 2]


@pytest.mark.parametrize(
    "partitions",
    [
        [_partition(0, 3), _partition(1, 2)],  # replica count differs
        [_partition(0, 1), _partition(1, 1, offline=1)],  # offline count differs
        [_partition(i, 0) for i in range(4)],  # all arrays empty
        [_partition(i, 126) for i in range(2)],  # counts at the one-byte limit
        [_partition(i, 127) for i in range(2)],  # two-byte varint counts
        [_partition(0, 2)],  # a single element
    ],
)
def test_mixed_and_edge_shapes_decode_alike(
    monkeypatch: pytest.MonkeyPatch, partitions: list[Any]
) -> None:
    msg = _response(partitions)
    data = msg.encode(12)
    fast, slow = _both_paths(monkeypatch, METADATA, lambda: Response.decode(data, 12))
    assert fast == slow == msg


def test_tagged_fields_on_a_later_element_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    partitions = [_partition(i, 2) for i in range(5)]
    partitions[3].unknown_tagged_fields = {7: b"xyz"}
    msg = _response(partitions)
    data = msg.encode(12)
    fast, slow = _both_paths(monkeypatch, METADATA, lambda: Response.decode(data, 12))
    assert fast == slow == msg
    assert fast.topics[0].partitions[3].unknown_tagged_fields == {7: b"xyz"}


def test_every_single_byte_corruption_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = _response([_partition(i, 2) for i in range(6)])
    data = msg.encode(12)
    rng = random.Random(1234)
    for at in range(len(data)):
        for value in {0, 1, 2, 3, 127, 128, 255, rng.randrange(256)}:
            bad = data[:at] + bytes((value,)) + data[at + 1 :]
            fast, slow = _both_paths(monkeypatch, METADATA, partial(Response.decode, bad, 12))
            assert fast == slow, (at, value)


def test_reader_table_rejects_bad_shapes_and_stays_bounded() -> None:
    table = uniform_readers(Partition, "hiii[i[i[i", Partition._FIELDS)
    assert table[0, 1, 1] is None  # a null array
    assert table[128, 1, 1] is None  # a multi-byte count
    assert table[1, 1] is None  # wrong number of arrays
    assert table[65, 2, 1] is None  # too many values for one record
    assert len(table) == 0
    for a in range(1, 20):
        for b in range(1, 20):
            table[a, b, 1]
    assert len(table) == 128
    assert table[30, 30, 1] is None
    reader = table[2, 2, 1]
    assert reader is not None
    data = _response([_partition(i, 1) for i in range(3)]).encode(12)
    start = data.index(b"\x04", 20)  # the partitions count byte (3 + 1)
    result = reader(data, start + 1, 3)
    assert result is not None
    elements, end = result
    assert [p.partition_index for p in elements] == [0, 1, 2]
    assert end == len(data) - 6  # authorized operations and two tag buffers follow
    assert reader(data, start + 1, 300) is None  # runs past the end


def test_layout_must_match_attributes() -> None:
    with pytest.raises(ValueError):
        uniform_readers(Partition, "hiii[i", Partition._FIELDS)
    with pytest.raises(ValueError):
        uniform_readers(Partition, "hiii[i[i[x", Partition._FIELDS)
    with pytest.raises(ValueError):
        uniform_readers(Partition, "hi", ("a", "import"))


# ----------------------------------------------------------------- every API

BULK_MODULES = sorted(
    {
        (key, side)
        for key, names in APIS.items()
        for side in ("request", "response")
        if _tables(importlib.import_module(f"kafka_sansio._messages.{names[1]}"))
    }
)


def _uniformise(obj: Any, flat: set[type]) -> None:
    """Make every array of flat structures three copies of its first element."""
    if not isinstance(obj, Struct):
        return
    for name in type(obj)._FIELDS:
        value = getattr(obj, name)
        if isinstance(value, list) and value and isinstance(value[0], Struct):
            first: Any = value[0]
            if type(first) in flat:
                first.unknown_tagged_fields = NO_TAGS
                copies = []
                for _ in range(3):
                    twin = type(first)()
                    for attr in type(first)._FIELDS:
                        v = getattr(first, attr)
                        setattr(twin, attr, list(v) if isinstance(v, list) else v)
                    copies.append(twin)
                setattr(obj, name, copies)
            else:
                for element in value:
                    _uniformise(element, flat)
        elif isinstance(value, Struct):
            _uniformise(value, flat)


def _corruptions(data: bytes, rng: random.Random) -> Iterator[bytes]:
    yield data
    for _ in range(30):
        at = rng.randrange(len(data))
        yield (
            data[:at]
            + bytes((rng.choice((0, 1, 2, 127, 128, 255, rng.randrange(256))),))
            + data[at + 1 :]
        )


@pytest.mark.parametrize(("key", "side"), BULK_MODULES)
@settings(
    max_examples=4,
    deadline=None,
    database=None,
    # monkeypatch is only used through monkeypatch.context(), undone every time
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_bulk_and_general_paths_agree_everywhere(
    monkeypatch: pytest.MonkeyPatch, key: int, side: str, data: st.DataObject
) -> None:
    cls = protocol.request_class(key) if side == "request" else protocol.response_class(key)
    module = importlib.import_module(cls.__module__)
    flat = {table.cls for table in _tables(module).values()}
    rng = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    first_flexible = cls.FIRST_FLEXIBLE_VERSION
    if first_flexible < 0:
        return
    for version in range(max(cls.MIN_VERSION, first_flexible), cls.MAX_VERSION + 1):
        msg = data.draw(ks.message(cls, version), label=f"v{version}")
        _uniformise(msg, flat)
        try:
            encoded = msg.encode(version)
        except LocalProtocolError:
            continue
        for raw in _corruptions(encoded, rng):
            fast, slow = _both_paths(monkeypatch, module, partial(cls.decode, raw, version))
            assert fast == slow
        assert cls.decode(encoded, version).encode(version) == encoded


@pytest.mark.parametrize("raw", [bytes(16), bytes(range(16)), b"\xff" * 16, b"\x80" + bytes(15)])
def test_fast_uuid_matches_the_constructor(raw: bytes) -> None:
    import copy
    import pickle
    import uuid

    from kafka_sansio._uuid import uuid_from_bytes

    fast, slow = uuid_from_bytes(raw), uuid.UUID(bytes=raw)
    assert fast == slow and hash(fast) == hash(slow) and str(fast) == str(slow)
    assert fast.is_safe is slow.is_safe
    assert pickle.loads(pickle.dumps(fast)) == slow == copy.copy(fast)
    with pytest.raises(TypeError):
        fast.int = 5  # type: ignore[misc]
