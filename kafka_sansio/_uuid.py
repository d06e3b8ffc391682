"""Fast UUID construction for the generated decoders.

Kept out of ``_wire`` so that importing the codec's core does not import
:mod:`uuid` (which pulls in :mod:`platform`); only message modules with uuid
fields need it.
"""

from __future__ import annotations

from uuid import UUID, SafeUUID

__all__ = ["uuid_from_bytes"]

_new = object.__new__
_int_from_bytes = int.from_bytes
_SAFE_UNKNOWN = SafeUUID.unknown
# UUID forbids attribute assignment; its slot descriptors' own setters do
# what object.__setattr__ would, without looking the names up each time.
_set_int = UUID.__dict__["int"].__set__
_set_is_safe = UUID.__dict__["is_safe"].__set__


def uuid_from_bytes(raw: bytes) -> UUID:
    """``UUID(bytes=raw)`` for exactly 16 bytes, without the constructor's checks."""
    value: UUID = _new(UUID)
    _set_int(value, _int_from_bytes(raw, "big"))
    _set_is_safe(value, _SAFE_UNKNOWN)
    return value
