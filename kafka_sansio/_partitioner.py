"""Choosing a partition for a record, compatible with the Java producer.

* A record with a key goes to ``toPositive(murmur2(key)) % partitions``: the
  partition the Java client's default partitioner picks, and librdkafka's
  ``murmur2_random`` (so keyed data written by any of them lands together).
* A record without a key follows sticky partitioning (KIP-480, KIP-794): the
  producer keeps filling one partition until about ``batch_size`` bytes have
  gone there, then moves on to another available partition picked at random.
* An explicit partition is taken as given.
* A :data:`Partitioner` callable replaces the keyed and keyless rules.

Everything here is pure: the random source comes in as an argument.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

__all__ = [
    "Partitioner",
    "murmur2",
    "murmur2_partition",
    "next_sticky_partition",
    "to_positive",
]

#: ``partitioner(topic, key, partition_count, available_partitions) -> partition``.
#: ``available_partitions`` lists the partitions that currently have a leader
#: (it may be empty); the result must be in ``range(partition_count)``.
Partitioner = Callable[[str, "bytes | None", int, Sequence[int]], int]

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's ``Utils.murmur2`` computes it: a signed 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length >> 2
    if whole:
        for k in _unpack_words(whole, data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    rest = length & 3
    if rest:
        tail = whole << 2
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


_WORDS: dict[int, struct.Struct] = {}


def _unpack_words(count: int, data: bytes) -> tuple[int, ...]:
    """The first ``count`` little-endian 32-bit words of ``data``."""
    unpacker = _WORDS.get(count)
    if unpacker is None:
        unpacker = struct.Struct(f"<{count}I")
        if len(_WORDS) < 256:
            _WORDS[count] = unpacker
    return unpacker.unpack_from(data)


def to_positive(n: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (not ``abs``)."""
    return n & 0x7FFFFFFF


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition the Java producer picks for ``key`` among ``partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def next_sticky_partition(
    partitions: int, available: Sequence[int], previous: int, random: Callable[[], float]
) -> int:
    """The next sticky partition for keyless records (KIP-480, KIP-794).

    Picks uniformly among the ``available`` partitions (those with a leader)
    other than ``previous``; among all partitions when none is available.
    The caller sticks to the result until about a batch worth of bytes went
    there, then asks again.
    """
    choices: Sequence[int] = [p for p in available if p != previous and p < partitions]
    if not choices:
        choices = [p for p in range(partitions) if p != previous] or [0]
    return choices[min(int(random() * len(choices)), len(choices) - 1)]
