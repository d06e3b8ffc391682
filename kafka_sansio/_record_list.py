"""RecordList: fetched records kept as columns until they are read.

The consumer decodes a batch into columns (offsets, timestamps, keys, values,
headers) and hands those out; a :class:`Record` tuple is built only when the
list is iterated or indexed.  Built inside ``map`` as the caller's loop asks
for them, records are made at C speed, and a record the caller drops after
looking at it is freed at once: the garbage collector never has to walk
thousands of buffered record objects (records are tuple subclasses, which it
tracks for as long as they live).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, repeat
from typing import Any, overload

from ._records import Columns, Header, Record

__all__ = ["RecordList"]

_new = tuple.__new__


class RecordList(Sequence[Record]):
    """An immutable sequence of :class:`Record`, stored as columns.

    Behaves as a read-only list of records: ``len``, indexing and slicing
    (a slice is another RecordList), iteration, ``==`` against any sequence of
    records.  Each read builds fresh ``Record`` tuples; ``list(records)`` gives a
    plain list to keep.
    """

    __slots__ = ("headers", "keys", "offsets", "timestamp_types", "timestamps", "values")

    def __init__(
        self,
        offsets: list[int],
        timestamps: list[int],
        timestamp_types: list[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        headers: list[tuple[Header, ...]],
    ) -> None:
        self.offsets = offsets
        self.timestamps = timestamps
        self.timestamp_types = timestamp_types
        self.keys = keys
        self.values = values
        self.headers = headers

    @classmethod
    def from_columns(cls, columns: Columns, timestamp_type: int) -> RecordList:
        """One batch's columns (see ``decode_columns_v2``), all of *timestamp_type*."""
        offsets, timestamps, keys, values, headers = columns
        return cls(offsets, timestamps, [timestamp_type] * len(offsets), keys, values, headers)

    @classmethod
    def from_records(cls, records: Iterable[Record]) -> RecordList:
        """The same records, as columns."""
        if isinstance(records, RecordList):
            return records
        rows = list(records)
        if not rows:
            return cls([], [], [], [], [], [])
        o, t, tt, k, v, h = map(list, zip(*rows, strict=True))
        return cls(o, t, tt, k, v, h)

    @classmethod
    def join(cls, parts: Sequence[Sequence[Record]]) -> RecordList:
        """The records of *parts*, one after another, as one list."""
        if len(parts) == 1:
            return cls.from_records(parts[0])
        if not parts:
            return cls([], [], [], [], [], [])
        columns = [cls.from_records(part)._columns() for part in parts]
        return cls(*(list(chain.from_iterable(column)) for column in zip(*columns, strict=True)))

    def __len__(self) -> int:
        return len(self.offsets)

    def __iter__(self) -> Iterator[Record]:
        return map(_new, repeat(Record), zip(*self._columns(), strict=True))

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> RecordList: ...

    def __getitem__(self, index: int | slice) -> Record | RecordList:
        columns = self._columns()
        if isinstance(index, slice):
            return RecordList(*(column[index] for column in columns))
        return _new(Record, tuple(column[index] for column in columns))

    def _columns(self) -> tuple[list[Any], ...]:
        return (
            self.offsets,
            self.timestamps,
            self.timestamp_types,
            self.keys,
            self.values,
            self.headers,
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordList):
            return self._columns() == other._columns()
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RecordList({list(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RecordList.from_records, (list(self),))
